"""Maintenance windows of rollouts: a cron expression for when a window opens, its length and its time zone.

A window opens at every time the five-field cron expression names, in the rollout's time
zone (wall-clock time, so "0 2 * * *" stays 02:00 across daylight saving changes), and
stays open ``window_minutes``. The expression is evaluated with cronsim (PyPI, pinned in
requirements.txt): small, typed, without dependencies, maintained by the Healthchecks.io
author, and it iterates backwards too, which is what "is now inside a window?" needs.
croniter was the other candidate; it carries more surface (seconds fields, hashing,
ranges of its own) than a maintenance window needs.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cronsim import CronSim, CronSimError

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    """Where ``now`` stands relative to a rollout's maintenance window."""

    open: bool
    #: When the window next opens (None while open, or if the expression never fires again).
    opens_at: datetime | None = None
    #: When the current window closes (None while closed).
    closes_at: datetime | None = None


ALWAYS = Window(open=True)


@lru_cache(maxsize=256)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def window_at(cron: str, minutes: int | None, timezone_name: str, now: datetime) -> Window:
    """Whether ``now`` (aware) is inside the window ``cron`` + ``minutes`` in ``timezone_name``.

    No window (an empty expression) is always open. An expression cronsim cannot read (the
    model's validator refuses them; a row written around it) is treated as a window that
    never opens: nothing is offered, which is the safe side for a window.
    """
    if not cron:
        return ALWAYS
    length = timedelta(minutes=minutes or 0)
    try:
        local = now.astimezone(_zone(timezone_name or "UTC"))
        # cronsim steps from the given minute exclusively; from the next minute backwards the
        # first hit is the latest opening at or before now.
        start = local.replace(second=0, microsecond=0) + MINUTE
        latest = next(CronSim(cron, start, reverse=True))
        if latest <= local < latest + length:
            return Window(open=True, closes_at=latest + length)
        upcoming = next(CronSim(cron, local), None)
    except (CronSimError, zoneinfo.ZoneInfoNotFoundError, StopIteration, ValueError):
        return Window(open=False)
    return Window(open=False, opens_at=upcoming)
