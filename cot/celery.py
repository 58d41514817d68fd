"""Celery application: jobs and the static beat schedule live in settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cot.settings")

app = Celery("cot")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
