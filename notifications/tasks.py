"""Thin jobs: send one delivery; pick up deliveries whose job message was lost."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from cot.tasks import AuditedTask
from notifications.services import deliveries


@shared_task(base=AuditedTask, acks_late=True)
def deliver_notification(delivery_id: int) -> str:
    """Send one delivery (idempotent: a sent or failed one is left alone); retries schedule themselves."""
    return deliveries.deliver(delivery_id)


@shared_task(base=AuditedTask, cross_tenant_path="jobs.beat")
def retry_due_deliveries() -> int:
    """Queue the deliveries that are past due (their message was lost, or a worker died)."""
    due = deliveries.due_deliveries(timezone.now())
    for pk in due:
        deliver_notification.delay(pk)
    return len(due)
