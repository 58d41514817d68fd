"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cot.settings")

application = get_wsgi_application()

from cot.checks import refuse_to_start_on_errors  # noqa: E402 (needs the apps loaded above)

# A half-migrated database, or permissions the code needs that do not exist: stop, don't serve.
refuse_to_start_on_errors()
