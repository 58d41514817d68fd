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


@shared_task(base=AuditedTask)
def expire_support_grants() -> int:
    """Record and clean up support grants past their expiry (access already ended at expiry)."""
    from tenants.services import do_expire_support_grants

    return do_expire_support_grants()
