"""Background jobs on payload data: purges after decommissioning, and retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.db import connections, transaction
from django.utils import timezone

import audit
from cot.database.scope import cross_tenant, tenant_scope
from cot.db_routers import TELEMETRY_ALIAS
from cot.tasks import AuditedTask
from devices.models import PayloadPurge
from tenants.models import Tenant

# Each payload table and the column its rows age by.
PAYLOAD_TIME_COLUMNS = {
    "devices_measurement": "time",
    "devices_event": "time",
    "devices_alarm": "last_time",
    "devices_operationresult": "time",
}
PAYLOAD_TABLES = tuple(PAYLOAD_TIME_COLUMNS)
BATCH = 10_000


def start_payload_purge(tenant_id: int, device_ids: list[int], *, actor: Any) -> PayloadPurge:
    """Record a purge job and queue it once the decommissioning commits."""
    purge = PayloadPurge.objects.create(tenant_id=tenant_id, device_ids=device_ids, created_by=actor)
    transaction.on_commit(lambda: purge_device_payload.delay(purge.pk))
    return purge


def _delete_batch(table: str, where: str, params: list[Any]) -> int:
    # One bounded statement per batch keeps locks and WAL bursts small on huge tables.
    with connections[TELEMETRY_ALIAS].cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {where} LIMIT %s)",  # noqa: S608 - fixed names
            [*params, BATCH],
        )
        return int(cursor.rowcount)


@shared_task(base=AuditedTask)
def purge_device_payload(purge_id: int) -> int:
    """Delete a purge job's payload rows in batches, saving progress after each (idempotent)."""
    with cross_tenant("jobs.task"):
        purge = PayloadPurge.objects.filter(pk=purge_id).exclude(status=PayloadPurge.Status.DONE).first()
    if purge is None:
        return 0
    # In the purge's tenant only: the device ids cannot reach another tenant's payload.
    with tenant_scope(purge.tenant_id):
        return _purge(purge)


def _purge(purge: PayloadPurge) -> int:
    where, params = "device_id = ANY(%s)", [purge.device_ids]
    with connections[TELEMETRY_ALIAS].cursor() as cursor:
        total = 0
        for table in PAYLOAD_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE {where}", params)  # noqa: S608 - fixed names
            total += cursor.fetchone()[0]
    PayloadPurge.objects.filter(pk=purge.pk).update(status=PayloadPurge.Status.RUNNING, total=purge.deleted + total)
    deleted = purge.deleted
    for table in PAYLOAD_TABLES:
        while count := _delete_batch(table, where, params):
            deleted += count
            PayloadPurge.objects.filter(pk=purge.pk).update(deleted=deleted)
    PayloadPurge.objects.filter(pk=purge.pk).update(status=PayloadPurge.Status.DONE, finished_at=timezone.now())
    audit.record("device.payload_purged", tenant=purge.tenant_id, target=purge, data={"rows": deleted})
    return deleted


@shared_task(base=AuditedTask, cross_tenant_path="jobs.beat")
def enforce_payload_retention() -> int:
    """Delete payload rows older than each tenant's retention, in batches."""
    removed = 0
    for tenant_id, days in Tenant.objects.values_list("pk", "payload_retention_days"):
        cutoff = timezone.now() - timedelta(days=days)
        for table, column in PAYLOAD_TIME_COLUMNS.items():
            where = f"tenant_id = %s AND {column} < %s"
            while count := _delete_batch(table, where, [tenant_id, cutoff]):
                removed += count
    return removed
