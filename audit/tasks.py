"""Periodic jobs on the audit trail."""

from celery import shared_task

from audit.checkpoints import write_checkpoint
from cot.tasks import AuditedTask


@shared_task(base=AuditedTask, cross_tenant_path="jobs.beat")
def write_audit_checkpoint() -> str:
    """Write a signed checkpoint of every chain's tip (see ``audit.checkpoints``); idempotent."""
    return str(write_checkpoint().path)
