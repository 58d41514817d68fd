"""Thin Celery tasks of the rollout engine; the work is in ``firmware.services.rollouts`` and ``firmware.engine``.

Every task takes ids or nothing, is idempotent, keeps its state in the database and runs
with ``acks_late`` (a worker lost mid-task leaves the message to be delivered again; the
task then finds the work done, or does it). Periodic ones are in ``CELERY_BEAT_SCHEDULE``.
"""

from __future__ import annotations

from celery import shared_task

from cot.database.scope import cross_tenant, tenant_scope
from cot.tasks import AuditedTask
from firmware import engine
from firmware.models import Rollout
from firmware.services.rollouts import run_planning


@shared_task(base=AuditedTask, name="firmware.tasks.plan_rollout", acks_late=True)
def plan_rollout(rollout_id: int) -> str | None:
    """Plan a rollout in ``planning`` (queued by ``do_plan_rollout`` and the watchdog); its status after."""
    with cross_tenant("jobs.task"):
        tenant_id = Rollout.objects.filter(pk=rollout_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        return None
    with tenant_scope(tenant_id):
        rollout = run_planning(rollout_id)
    return rollout.status if rollout is not None else None


@shared_task(base=AuditedTask, name="firmware.tasks.evaluate_rollouts", acks_late=True, cross_tenant_path="jobs.beat")
def evaluate_rollouts() -> dict[str, int]:
    """One engine tick over the running and canceling rollouts."""
    return engine.evaluate_rollouts()


@shared_task(
    base=AuditedTask, name="firmware.tasks.sweep_rollout_timeouts", acks_late=True, cross_tenant_path="jobs.beat"
)
def sweep_rollout_timeouts() -> int:
    """Targets past their per-device timeout become ``timed_out``, in bounded batches."""
    return engine.sweep_timeouts()


@shared_task(
    base=AuditedTask, name="firmware.tasks.reconcile_rollout_counters", acks_late=True, cross_tenant_path="jobs.beat"
)
def reconcile_rollout_counters() -> list[int]:
    """Recount active and soaking waves and repair drift."""
    return engine.reconcile_counters()


@shared_task(base=AuditedTask, name="firmware.tasks.rollout_watchdog", acks_late=True, cross_tenant_path="jobs.beat")
def rollout_watchdog() -> list[int]:
    """Queue planning again where its worker vanished."""
    return engine.watchdog()
