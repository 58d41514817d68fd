"""Writing validated payload rows into the telemetry database, set-based."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from cot.db_routers import TELEMETRY_ALIAS
from cot.prepared import execute_prepared
from devices.models import Device, Event


def copy_text(tenant_id: int, device_id: int, rows: list[tuple[Any, ...]]) -> str:
    """Validated ``(time, type, series, value, unit)`` rows as ``COPY … FROM STDIN`` text."""
    prefix = f"{tenant_id}\t{device_id}\t"
    return "".join(
        [
            f"{prefix}{time.isoformat()}\t{kind}\t{series}\t{float(value)!r}\t{unit}\n"
            for time, kind, series, value, unit in rows
        ]
    )


def store_measurements(device: Device, rows: list[tuple[Any, ...]]) -> int:
    """COPY the rows in one statement (the fastest way PostgreSQL takes many rows).

    Validation guarantees names and units hold no tab, newline or backslash, so the
    text format needs no escaping. One statement is all or nothing by itself, so no
    explicit transaction wraps it: BEGIN and COMMIT would cost two more round trips.
    """
    if len(rows) == 1:
        # One row: a plain INSERT is one message where COPY needs a protocol exchange.
        ((time, kind, series, value, unit),) = rows
        execute_prepared(
            connections[TELEMETRY_ALIAS],
            "cot_insert_measurement",
            "INSERT INTO devices_measurement (tenant_id, device_id, time, type, series, value, unit)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [device.tenant_id, device.pk, time, kind, series, float(value), unit],
        )
        return 1
    buffer = io.StringIO(copy_text(device.tenant_id, device.pk, rows))
    with connections[TELEMETRY_ALIAS].cursor() as cursor:
        cursor.copy_expert(
            "COPY devices_measurement (tenant_id, device_id, time, type, series, value, unit) FROM STDIN", buffer
        )
    return len(rows)


def store_events(device: Device, rows: list[tuple[Any, ...]]) -> int:
    """Insert events in one statement."""
    Event.objects.bulk_create(
        Event(tenant_id=device.tenant_id, device_id=device.pk, time=t, type=kind, text=text, attributes=attrs)
        for t, kind, text, attrs in rows
    )
    return len(rows)


_UPSERT_ALARM = """
INSERT INTO devices_alarm
    (tenant_id, device_id, type, severity, status, text, count, first_time, last_time, updated_at)
VALUES (%s, %s, %s, %s, 'ACTIVE', %s, 1, %s, %s, %s)
ON CONFLICT (device_id, type) WHERE NOT (status = 'CLEARED')
DO UPDATE SET count = devices_alarm.count + 1,
              last_time = GREATEST(devices_alarm.last_time, EXCLUDED.last_time),
              severity = EXCLUDED.severity,
              text = EXCLUDED.text,
              updated_at = EXCLUDED.updated_at
RETURNING id, count
"""


def store_alarms(device: Device, rows: list[tuple[Any, ...]]) -> list[dict[str, int]]:
    """Raise alarms; a repeat of an open alarm of the same type counts it up instead."""
    now = timezone.now()
    results = []
    with transaction.atomic(using=TELEMETRY_ALIAS), connections[TELEMETRY_ALIAS].cursor() as cursor:
        for time, kind, severity, text in rows:
            cursor.execute(_UPSERT_ALARM, [device.tenant_id, device.pk, kind, severity, text, time, time, now])
            alarm_id, count = cursor.fetchone()
            results.append({"id": alarm_id, "count": count})
    return results


def touch_device(device: Device, now: datetime, resolution: int, **changes: Any) -> None:
    """Record that the device was seen, at most once per ``resolution`` seconds unless state changes."""
    stale = device.last_seen_at is None or (now - device.last_seen_at).total_seconds() >= resolution
    if changes:
        Device.objects.filter(pk=device.pk).update(last_seen_at=now, **changes)
        device.last_seen_at = now
    elif stale:
        # The common case, once per device and interval: prepared, as the other statements of this path.
        execute_prepared(
            connections[router.db_for_write(Device)],
            "cot_touch_device",
            f"UPDATE {Device._meta.db_table} SET last_seen_at = %s WHERE id = %s",  # noqa: S608 (the model's table)
            [now, device.pk],
        )
        device.last_seen_at = now  # so a second touch in the same request finds it fresh
