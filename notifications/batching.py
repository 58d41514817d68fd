"""Quiet hours and digests: when a rule's notification is sent, and with which others.

A rule may hold its notifications during *quiet hours* (a daily stretch of local time, for
example 22:00-07:00 in Europe/Berlin) and send what it held as one message when they end;
critical alarms break through unless the rule says otherwise. A rule may also collect its
notifications into a *digest*: one message every 15 minutes, hour, four hours or day,
windows counted from local midnight. A notification held either way gets ``batch_at``,
the moment its combined message is due; the beat job sends it then.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DIGEST_CHOICES = (
    (0, "off (one message each)"),
    (15, "every 15 minutes"),
    (60, "hourly"),
    (240, "every 4 hours"),
    (1440, "daily"),
)
DIGEST_MINUTES = tuple(minutes for minutes, _ in DIGEST_CHOICES)


# In the tz database but no place's zone: the server's own setting, and helper entries.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not a time zone cot knows (IANA names such as Europe/Berlin), or ``None``."""
    if name in _NOT_PLACES or name not in available_timezones():
        return f"Unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC."
    return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_end(quiet_from: time | None, quiet_until: time | None, zone_name: str, now: datetime) -> datetime | None:
    """When the quiet hours ``now`` falls into end, or ``None`` when ``now`` is not quiet.

    ``quiet_from`` after ``quiet_until`` spans midnight (22:00-07:00).
    """
    if quiet_from is None or quiet_until is None or quiet_from == quiet_until:
        return None
    zone = _zone(zone_name)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if quiet_from < quiet_until:
        quiet = quiet_from <= clock < quiet_until
    else:
        quiet = clock >= quiet_from or clock < quiet_until
    if not quiet:
        return None
    day = local.date() if clock < quiet_until else local.date() + timedelta(days=1)
    return datetime.combine(day, quiet_until, tzinfo=zone)


def digest_due(minutes: int, zone_name: str, now: datetime) -> datetime | None:
    """The end of the digest window ``now`` falls into (windows of ``minutes`` from local midnight)."""
    if not minutes:
        return None
    local = now.astimezone(_zone(zone_name))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Wall-clock arithmetic (same tzinfo): a daily digest comes at local midnight, DST or not.
    elapsed = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).total_seconds()
    due = midnight + timedelta(minutes=(int(elapsed // (minutes * 60)) + 1) * minutes)
    # In the hour a clock turns back, wall-clock time can name a moment already past.
    while due <= now:
        due += timedelta(minutes=minutes)
    return due


def batch_time(rule: Any, now: datetime, *, critical: bool) -> datetime | None:
    """When ``rule``'s notification of ``now`` is due as part of a combined message; ``None``: send it at once.

    A critical alarm goes at once where the rule lets it break through. In quiet hours,
    everything waits for their end; otherwise for the digest, and a digest that would fall
    into quiet hours comes when they end instead (a daily digest at midnight with quiet
    hours 22:00-07:00 comes at 07:00).
    """
    if critical and rule.critical_breaks_quiet:
        return None
    quiet = (rule.quiet_from, rule.quiet_until, rule.quiet_timezone)
    held = quiet_end(*quiet, now)
    if held is not None:
        return held
    due = digest_due(rule.digest_minutes, rule.quiet_timezone, now)
    if due is None:
        return None
    return quiet_end(*quiet, due) or due
