"""Writing validated payload rows into the telemetry database, set-based."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from cot.db_routers import TELEMETRY_ALIAS
from cot.prepared import execute_prepared
from devices.models import Alarm, Device, Event
from devices.signals import alarm_raised

_INSERT_ONE = (
    "INSERT INTO devices_measurement (tenant_id, device_id, time, type, series, value, unit)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
# A batch is one statement over five arrays. Not COPY, though faster: PostgreSQL refuses
# COPY FROM into a table with row-level security (docs/security.md).
_INSERT_MANY = (
    "INSERT INTO devices_measurement (tenant_id, device_id, time, type, series, value, unit)"
    " SELECT %s, %s, r.time, r.type, r.series, r.value, r.unit"
    " FROM unnest(%s::timestamptz[], %s::varchar[], %s::varchar[], %s::float8[], %s::varchar[])"
    " AS r(time, type, series, value, unit)"
)


def _array(texts: Iterable[str]) -> str:
    """A PostgreSQL array literal of ``texts``; validation leaves no backslash in them, so only quotes need escaping."""
    return "{" + ",".join('"' + text.replace('"', '\\"') + '"' for text in texts) + "}"


def store_measurements(device: Device, rows: list[tuple[Any, ...]]) -> int:
    """Insert the rows in one prepared statement.

    One statement is all or nothing by itself, so no explicit transaction wraps it: BEGIN
    and COMMIT would cost two more round trips.
    """
    telemetry = connections[TELEMETRY_ALIAS]
    if len(rows) == 1:
        ((time, kind, series, value, unit),) = rows
        params = [device.tenant_id, device.pk, time, kind, series, float(value), unit]
        execute_prepared(telemetry, "cot_insert_measurement", _INSERT_ONE, params)
        return 1
    times, kinds, series, values, units = zip(*rows, strict=True)
    # Each column as one array literal: PostgreSQL parses it far faster than a thousand
    # literals with casts, which is what the driver would make of Python lists.
    params = [
        device.tenant_id,
        device.pk,
        _array(time.isoformat() for time in times),
        _array(kinds),
        _array(series),
        "{" + ",".join(repr(float(value)) for value in values) + "}",
        _array(units),
    ]
    execute_prepared(telemetry, "cot_insert_measurements", _INSERT_MANY, params)
    return len(rows)


def store_events(device: Device, rows: list[tuple[Any, ...]]) -> int:
    """Insert events in one statement."""
    Event.objects.bulk_create(
        Event(tenant_id=device.tenant_id, device_id=device.pk, time=t, type=kind, text=text, attributes=attrs)
        for t, kind, text, attrs in rows
    )
    return len(rows)


_UPSERT_ALARM = """
WITH previous AS (
    SELECT severity FROM devices_alarm WHERE device_id = %s AND type = %s AND NOT (status = 'CLEARED')
)
INSERT INTO devices_alarm
    (tenant_id, device_id, type, severity, status, text, count, first_time, last_time, updated_at)
VALUES (%s, %s, %s, %s, 'ACTIVE', %s, 1, %s, %s, %s)
ON CONFLICT (device_id, type) WHERE NOT (status = 'CLEARED')
DO UPDATE SET count = devices_alarm.count + 1,
              last_time = GREATEST(devices_alarm.last_time, EXCLUDED.last_time),
              severity = EXCLUDED.severity,
              text = EXCLUDED.text,
              updated_at = EXCLUDED.updated_at
RETURNING id, count, (SELECT severity FROM previous)
"""
# Most urgent first: a repeat that climbs this list is announced again.
_URGENCY = {severity: rank for rank, severity in enumerate(reversed(Alarm.Severity.values))}


def store_alarms(device: Device, rows: list[tuple[Any, ...]]) -> list[dict[str, int]]:
    """Raise alarms; a repeat of an open alarm of the same type counts it up instead.

    New alarms are announced (``alarm_raised``), and so is a repeat that raises the open
    alarm's severity (``escalated_from`` names the one before): a MINOR alarm turning
    CRITICAL is news; the same severity again is not.
    """
    now = timezone.now()
    results = []
    with transaction.atomic(using=TELEMETRY_ALIAS), connections[TELEMETRY_ALIAS].cursor() as cursor:
        for time, kind, severity, text in rows:
            params = [device.pk, kind, device.tenant_id, device.pk, kind, severity, text, time, time, now]
            cursor.execute(_UPSERT_ALARM, params)
            alarm_id, count, previous = cursor.fetchone()
            results.append({"id": alarm_id, "count": count})
            escalated = count > 1 and _URGENCY.get(severity, 0) > _URGENCY.get(previous, 0)
            if count == 1 or escalated:
                raised = {"alarm_id": alarm_id, "type": kind, "severity": severity, "text": text, "time": time}
                if escalated:
                    raised["escalated_from"] = previous
                transaction.on_commit(partial(_announce, device, raised), using=TELEMETRY_ALIAS)
    return results


def _announce(device: Device, alarm: dict[str, Any]) -> None:
    alarm_raised.send(sender=Device, tenant_id=device.tenant_id, device_id=device.pk, **alarm)


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
