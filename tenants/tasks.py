"""Periodic jobs of the tenants app: sessions, support grants, the isolation check."""

from celery import shared_task
from django.contrib.sessions.models import Session
from django.utils import timezone

from cot.tasks import AuditedTask


@shared_task(base=AuditedTask, cross_tenant_path="jobs.beat")
def clear_expired_sessions() -> int:
    """Delete sessions past their expiry in one statement; idempotent."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted


@shared_task(base=AuditedTask, cross_tenant_path="jobs.beat")
def expire_support_grants() -> int:
    """Record and clean up support grants past their expiry (access already ended at expiry)."""
    from tenants.services import do_expire_support_grants

    return do_expire_support_grants()


@shared_task(base=AuditedTask, cross_tenant_path="jobs.beat")
def check_isolation() -> int:
    """Look for rows that tie tenants together (``tenants.services.isolation``); how many were found."""
    from tenants.services.isolation import do_check_isolation

    return len(do_check_isolation().findings)
