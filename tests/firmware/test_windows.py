"""Maintenance windows: cron openings in the rollout's time zone, open for their duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from firmware.windows import window_at


def at(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_no_window_is_always_open() -> None:
    assert window_at("", None, "", at(2026, 1, 5, 12, 0)).open


@pytest.mark.parametrize(
    ("now", "open_", "opens_at"),
    [
        (at(2026, 1, 5, 0, 59), False, at(2026, 1, 5, 1, 0)),  # 02:00 Berlin (winter) is 01:00 UTC
        (at(2026, 1, 5, 1, 0), True, None),
        (at(2026, 1, 5, 1, 59, 59), True, None),
        (at(2026, 1, 5, 2, 0), False, at(2026, 1, 6, 1, 0)),
        (at(2026, 7, 5, 0, 30), True, None),  # summer: 02:00 Berlin is 00:00 UTC
    ],
)
def test_a_window_opens_at_local_wall_clock_time_for_its_duration(now, open_, opens_at) -> None:
    window = window_at("0 2 * * *", 60, "Europe/Berlin", now)
    assert window.open is open_
    if opens_at is not None:
        assert window.opens_at == opens_at
    if open_:
        assert window.closes_at is not None and window.closes_at - now <= timedelta(hours=1)


def test_weekdays_only() -> None:
    saturday = at(2026, 1, 10, 2, 30)
    window = window_at("0 2 * * 1-5", 120, "UTC", saturday)
    assert not window.open and window.opens_at == at(2026, 1, 12, 2, 0)


@pytest.mark.parametrize(("cron", "zone"), [("99 2 * * *", "UTC"), ("0 2 30 2 *", "UTC"), ("0 2 * * *", "Mars/Base")])
def test_a_window_that_cannot_open_offers_nothing(cron: str, zone: str) -> None:
    window = window_at(cron, 60, zone, at(2026, 1, 5, 2, 30))
    assert not window.open and window.opens_at is None
