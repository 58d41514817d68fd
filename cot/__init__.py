"""cot: a multi-tenant IoT device-management portal."""

from cot.celery import app as celery_app

__all__ = ("celery_app",)
