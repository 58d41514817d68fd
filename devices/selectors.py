"""Reads about devices that several views share."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import DateTimeField, ExpressionWrapper, F, Q, QuerySet, Value
from django.utils import timezone

from devices.models import Device

DEFAULT_HEARTBEAT_SECONDS = 300


def is_online(device: Device) -> bool:
    """Seen within twice its type's heartbeat interval."""
    if device.last_seen_at is None:
        return False
    interval = device.type.heartbeat_interval if device.type_id and device.type else DEFAULT_HEARTBEAT_SECONDS
    return timezone.now() - device.last_seen_at <= timedelta(seconds=2 * interval)


def filter_online(queryset: QuerySet[Device], online: bool) -> QuerySet[Device]:
    """Devices (not) seen within twice their type's heartbeat interval, in SQL."""
    now = timezone.now()
    type_cutoff = ExpressionWrapper(
        Value(now) - F("type__heartbeat_interval") * timedelta(seconds=2), output_field=DateTimeField()
    )
    with_type = Q(type__isnull=False, last_seen_at__gte=type_cutoff)
    without_type = Q(type__isnull=True, last_seen_at__gte=now - timedelta(seconds=2 * DEFAULT_HEARTBEAT_SECONDS))
    condition = with_type | without_type
    return queryset.filter(condition) if online else queryset.exclude(condition)
