"""Celery application: jobs and the static beat schedule live in settings."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cot.settings")

app = Celery("cot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def _refuse_to_work_on_errors(**kwargs: Any) -> None:
    """A worker checks the database as the web does before it takes a job (``cot.checks``)."""
    from cot.checks import refuse_to_start_on_errors

    try:
        refuse_to_start_on_errors()
    except Exception as exc:
        # Celery logs and ignores exceptions of signal handlers; exiting is what stops the worker.
        raise SystemExit(f"{exc}") from exc
