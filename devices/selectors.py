"""Reads about devices that several views share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    Avg,
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Greatest, Least
from django.utils import timezone

from audit.models import AuditEntry
from devices.device_api.validation import VALUE_BOUND
from devices.models import Alarm, Device, DeviceGroup, Event, Measurement, Operation
from devices.presence import DEFAULT_HEARTBEAT_SECONDS, is_online_since, online_window
from tenants.models import Action, User


def is_online(device: Device) -> bool:
    """Heard within twice its type's heartbeat interval (``devices.presence``)."""
    interval = device.type.heartbeat_interval if device.type_id and device.type else DEFAULT_HEARTBEAT_SECONDS
    return is_online_since(device.last_seen_at, interval, timezone.now())


def online_condition() -> Q:
    """Q matching devices online now, in SQL: the same rule as ``is_online`` (``devices.presence``)."""
    now = timezone.now()
    interval = Cast(F("type__heartbeat_interval"), BigIntegerField())  # no int4 overflow in 2 * interval
    lag = Least(
        Value(settings.DEVICE_LAST_SEEN_RESOLUTION_SECONDS), Greatest(Value(1), interval / 2)
    )  # presence.write_lag
    window = (interval * 2 + lag) * timedelta(seconds=1)
    type_cutoff = ExpressionWrapper(Value(now) - window, output_field=DateTimeField())
    with_type = Q(type__isnull=False, last_seen_at__gte=type_cutoff)
    without_type = Q(type__isnull=True, last_seen_at__gte=now - online_window(DEFAULT_HEARTBEAT_SECONDS))
    return with_type | without_type


def filter_online(queryset: QuerySet[Device], online: bool) -> QuerySet[Device]:
    """Devices (not) online (``online_condition``)."""
    condition = online_condition()
    return queryset.filter(condition) if online else queryset.exclude(condition)


# --- measurement charts --------------------------------------------------------------------

DEFAULT_BUCKETS = 300
MAX_SERIES = 12


class DateBin(Func):
    """PostgreSQL's ``date_bin(stride, source, origin)``: the start of the bucket holding ``source``."""

    function = "date_bin"
    output_field = DateTimeField()


@dataclass(frozen=True)
class Bucket:
    """Aggregates of one series over one time bucket (starting at ``start``)."""

    start: datetime
    avg: float
    min: float
    max: float
    count: int


@dataclass(frozen=True)
class Series:
    """One measurement series of a device, downsampled: at most one ``Bucket`` per stride."""

    type: str
    series: str
    unit: str
    points: list[Bucket]


def bucket_stride(since: datetime, until: datetime, buckets: int) -> timedelta:
    """The whole-second bucket width that splits ``[since, until)`` into at most ``buckets`` buckets."""
    if until <= since or buckets < 1:
        raise ValueError("An empty time range or no buckets.")
    span = (until - since).total_seconds()
    return timedelta(seconds=max(1, math.ceil(span / buckets)))


def series_names(rows: QuerySet[Measurement], device_id: int, limit: int = MAX_SERIES) -> list[tuple[str, str]]:
    """The distinct ``(type, series)`` pairs of a device, in order, at most ``limit``.

    A loose index scan over ``(device_id, type, series, time)``: each step asks the index
    for the first pair after the previous one, so the cost grows with the number of
    series, not with the number of stored values.
    """
    rows = rows.filter(device_id=device_id).order_by("type", "series")
    found: list[tuple[str, str]] = []
    step = rows.values_list("type", "series").first()
    while step is not None and len(found) < limit:
        found.append(step)
        kind, name = step
        step = (
            rows.filter(type=kind, series__gt=name).values_list("type", "series").first()
            or rows.filter(type__gt=kind).values_list("type", "series").first()
        )
    return found


def measurement_series(
    user: Any,
    device: Device,
    *,
    since: datetime,
    until: datetime,
    buckets: int = DEFAULT_BUCKETS,
) -> list[Series]:
    """A device's measurements in ``[since, until)``, downsampled in SQL to at most ``buckets`` points per series.

    Reads the telemetry database through ``Measurement.objects.restrict(user, "view")``,
    so a caller without access to the device gets no series at all. Each series is
    aggregated by ``date_bin`` into buckets of equal width (average, minimum, maximum
    and count per bucket) by one range scan of its index, however long its history. The
    averages are of values clamped to ``±VALUE_BOUND`` (only older rows lie beyond it).
    """
    rows = Measurement.objects.restrict(user, Action.VIEW)
    stride = bucket_stride(since, until, buckets)
    # Rows stored before values were bounded may reach ±1.7e308, where PostgreSQL's avg
    # overflows: the average is taken over values clamped to the bound (infinities and NaN
    # included, PostgreSQL orders NaN above every number); minimum and maximum stay exact.
    clamped = Greatest(
        Least(F("value"), Value(VALUE_BOUND, output_field=FloatField())),
        Value(-VALUE_BOUND, output_field=FloatField()),
    )
    result = []
    for kind, name in series_names(rows, device.pk):
        aggregated = (
            rows.filter(device_id=device.pk, type=kind, series=name, time__gte=since, time__lt=until)
            .annotate(
                bucket=DateBin(
                    Value(stride, output_field=DurationField()),
                    F("time"),
                    Value(since, output_field=DateTimeField()),
                )
            )
            .values("bucket")
            .annotate(avg=Avg(clamped), low=Min("value"), high=Max("value"), count=Count("id"), unit=Max("unit"))
            .order_by("bucket")
        )
        points, unit = [], ""
        for row in aggregated:
            points.append(Bucket(row["bucket"], row["avg"], row["low"], row["high"], row["count"]))
            unit = row["unit"] or unit
        if points:
            result.append(Series(type=kind, series=name, unit=unit, points=points))
    return result


# --- the device page -----------------------------------------------------------------------

RECENT_ROWS = 20


def latest_values(user: Any, device: Device) -> list[Measurement]:
    """The newest value of each of the device's series (at most ``MAX_SERIES``) the caller may see.

    One index probe per series (``series_names``, then the newest row of each): the cost
    grows with the number of series, not with the device's history.
    """
    rows = Measurement.objects.restrict(user, Action.VIEW).filter(device_id=device.pk)
    newest = []
    for kind, name in series_names(rows, device.pk):
        row = rows.filter(type=kind, series=name).order_by("-time", "-id").first()
        if row is not None:
            newest.append(row)
    return newest


def recent_alarms(user: Any, device: Device, limit: int = RECENT_ROWS) -> list[Alarm]:
    """The device's alarms the caller may see, open ones first, newest first."""
    rows = Alarm.objects.restrict(user, Action.VIEW).filter(device_id=device.pk)
    cleared_last = Case(When(status=Alarm.Status.CLEARED, then=Value(1)), default=Value(0))
    return list(rows.order_by(cleared_last, "-last_time", "-id")[:limit])


def recent_events(user: Any, device: Device, limit: int = RECENT_ROWS) -> list[Event]:
    """The device's newest events the caller may see."""
    return list(Event.objects.restrict(user, Action.VIEW).filter(device_id=device.pk).order_by("-time", "-id")[:limit])


def recent_operations(user: Any, device: Device, limit: int = RECENT_ROWS) -> list[Operation]:
    """The device's newest operations the caller may see."""
    rows = Operation.objects.restrict(user, Action.VIEW).filter(device=device.pk).select_related("created_by")
    return list(rows.order_by("-id")[:limit])


def device_audit_entries(user: Any, device: Device, limit: int = RECENT_ROWS) -> list[AuditEntry]:
    """Audit entries about the device itself; only callers who may read the trail see any."""
    content_type = ContentType.objects.get_for_model(Device)
    rows = AuditEntry.objects.restrict(user, Action.VIEW).filter(content_type=content_type, object_pk=str(device.pk))
    return list(rows.order_by("-id")[:limit])


@dataclass(frozen=True)
class TreeNode:
    """One row of the group tree: a visible group, its depth and its visible devices."""

    group_id: int
    name: str
    depth: int
    devices: int
    subtree_devices: int


def group_tree(user: User) -> list[TreeNode]:
    """The groups ``user`` can see, depth first, each with the devices they can see in it.

    Rights are not inherited down the tree, so a visible group whose parent is hidden
    from the caller is shown as a root; hidden groups are neither shown nor named.
    """
    groups = {
        row["pk"]: row for row in DeviceGroup.objects.restrict(user, Action.VIEW).values("pk", "name", "parent_id")
    }
    counts = dict(
        Device.objects.restrict(user, Action.VIEW)
        .order_by()
        .values_list("group")
        .annotate(total=Count("pk"))
        .values_list("group", "total")
    )
    children: dict[int | None, list[int]] = {}
    for pk, row in groups.items():
        parent = row["parent_id"] if row["parent_id"] in groups else None
        children.setdefault(parent, []).append(pk)
    for kids in children.values():
        kids.sort(key=lambda pk: groups[pk]["name"].lower())
    nodes: list[TreeNode] = []
    seen: set[int] = set()

    def walk(pk: int, depth: int) -> int:
        """Append ``pk``'s subtree; return the devices in it."""
        seen.add(pk)
        index = len(nodes)
        nodes.append(TreeNode(pk, groups[pk]["name"], depth, counts.get(pk, 0), 0))
        total = counts.get(pk, 0) + sum(walk(kid, depth + 1) for kid in children.get(pk, []) if kid not in seen)
        nodes[index] = TreeNode(pk, groups[pk]["name"], depth, counts.get(pk, 0), total)
        return total

    for root in children.get(None, []):
        walk(root, 0)
    for pk in sorted(set(groups) - seen):  # only if stored rows ever formed a loop
        walk(pk, 0)
    return nodes


# --- the fleet at a glance (the cockpit's home page) -------------------------------------------

TOP_ROWS = 8


def fleet_counts(user: Any) -> dict[str, int]:
    """The caller's devices by status, and the active ones online, offline and never seen, in one query."""
    active = Q(status=Device.Status.ACTIVE)
    online = online_condition()
    counts: dict[str, int] = Device.objects.restrict(user, Action.VIEW).aggregate(
        total=Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in Device.Status.values},
        online=Count("pk", filter=active & online),
        offline=Count("pk", filter=active & ~online),
        never_seen=Count("pk", filter=active & Q(last_seen_at__isnull=True)),
    )
    return counts


def silent_devices(user: Any, limit: int = TOP_ROWS) -> list[dict[str, Any]]:
    """Active devices not heard within their interval, the longest silent first (never seen last)."""
    rows = filter_online(Device.objects.restrict(user, Action.VIEW).filter(status=Device.Status.ACTIVE), False)
    rows = rows.order_by(F("last_seen_at").asc(nulls_last=True), "pk")
    return [dict(row) for row in rows.values("pk", "external_id", "name", "last_seen_at")[:limit]]


def firmware_versions(user: Any, limit: int = TOP_ROWS) -> list[dict[str, Any]]:
    """The most common firmware versions among the caller's active devices, with their device counts."""
    rows = Device.objects.restrict(user, Action.VIEW).filter(status=Device.Status.ACTIVE).order_by()
    rows = rows.values("firmware_version").annotate(devices=Count("pk")).order_by("-devices", "firmware_version")
    return list(rows[:limit])


OPEN_ALARM_STATES = (Alarm.Status.ACTIVE, Alarm.Status.ACKNOWLEDGED)


def open_alarm_counts(user: Any) -> dict[str, dict[str, int]]:
    """``{severity: {"ACTIVE": n, "ACKNOWLEDGED": n}}`` over the caller's alarms, in one query."""
    rows = Alarm.objects.restrict(user, Action.VIEW).filter(status__in=OPEN_ALARM_STATES)
    figures = rows.aggregate(
        **{
            f"{severity}:{status}": Count("pk", filter=Q(severity=severity, status=status))
            for severity in Alarm.Severity.values
            for status in OPEN_ALARM_STATES
        }
    )
    return {
        severity: {status: figures[f"{severity}:{status}"] for status in OPEN_ALARM_STATES}
        for severity in Alarm.Severity.values
    }


def measurements_per_hour(user: Any, hours: int = 24) -> list[dict[str, Any]]:
    """Measurements of the caller's devices in each of the last ``hours`` hours (by their time), oldest first.

    One grouped range scan of the ``(tenant_id, time)`` index; hours without a value are
    listed with 0, so the chart has no gaps.
    """
    end = timezone.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    rows = (
        Measurement.objects.restrict(user, Action.VIEW)
        .filter(time__gte=start, time__lt=end)
        .annotate(hour=DateBin(Value(timedelta(hours=1), output_field=DurationField()), F("time"), Value(start)))
        .values("hour")
        .annotate(values=Count("pk"))
        .order_by()
    )
    per_hour = {row["hour"]: row["values"] for row in rows}
    return [
        {"hour": start + timedelta(hours=n), "values": per_hour.get(start + timedelta(hours=n), 0)}
        for n in range(hours)
    ]


def located_devices(user: Any, limit: int) -> tuple[list[dict[str, Any]], int]:
    """The caller's devices with a reported location (the most recently located ``limit``) and how many there are."""
    rows = Device.objects.restrict(user, Action.VIEW).filter(latitude__isnull=False, longitude__isnull=False)
    newest = (
        rows.annotate(online=ExpressionWrapper(online_condition(), output_field=BooleanField()))
        .order_by(F("located_at").desc(nulls_last=True), "-pk")
        .values("pk", "external_id", "name", "status", "latitude", "longitude", "located_at", "online")[:limit]
    )
    return [dict(row) for row in newest], rows.count()
