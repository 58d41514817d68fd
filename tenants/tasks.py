"""Periodic housekeeping for sessions."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

from cot.tasks import AuditedTask


@shared_task(base=AuditedTask)
def clear_expired_sessions() -> int:
    """Delete sessions past their expiry in one statement; idempotent."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
