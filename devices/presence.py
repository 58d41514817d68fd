"""When a device counts as online, and how far its stored last-seen time may lag behind.

A device is online while it was heard within twice its type's heartbeat interval. The
device API writes ``last_seen_at`` at most every ``DEVICE_LAST_SEEN_RESOLUTION_SECONDS``
(a write per request would cost the busiest path a second statement), so the stored time
may lag the real one by up to that; for short intervals the lag is kept to half the
interval. Online is then judged by the stored time plus that lag, the same way in
Python (``is_online``) and in SQL (``devices.selectors.filter_online``), so a device
that keeps its interval never shows offline, whatever the interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings

DEFAULT_HEARTBEAT_SECONDS = 300


def write_lag(interval: int) -> int:
    """Seconds ``last_seen_at`` may lag behind the device's last request, for this heartbeat interval."""
    return max(1, min(settings.DEVICE_LAST_SEEN_RESOLUTION_SECONDS, interval // 2))


def online_window(interval: int) -> timedelta:
    """How long after its stored last-seen time a device with this interval still counts as online."""
    return timedelta(seconds=2 * interval + write_lag(interval))


def is_online_since(last_seen_at: datetime | None, interval: int, now: datetime) -> bool:
    """Whether a device last seen (as stored) at ``last_seen_at`` counts as online ``now``."""
    return last_seen_at is not None and now - last_seen_at <= online_window(interval)


@lru_cache(maxsize=4096)
def type_interval(type_id: int | None) -> int:
    """The heartbeat interval of a device type, read once per process (types never change once created)."""
    from devices.models import DeviceType

    if type_id is None:
        return DEFAULT_HEARTBEAT_SECONDS
    interval = DeviceType.objects.filter(pk=type_id).values_list("heartbeat_interval", flat=True).first()
    return DEFAULT_HEARTBEAT_SECONDS if interval is None else int(interval)
