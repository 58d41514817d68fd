"""Fixtures of the notification tests: a receiver the operator allows, and the queued delivery jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from notifications import tasks
from tests.support.notifications import Receiver


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.COT_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # the operator allows the test's own loopback
    started = Receiver([200])
    yield started
    started.server.shutdown()
    started.server.server_close()


@pytest.fixture
def queued(monkeypatch: Any) -> list[tuple[int, float]]:
    """Delivery jobs queued (with their countdown), run by the test as a worker would."""
    jobs: list[tuple[int, float]] = []
    monkeypatch.setattr(tasks.deliver_notification, "delay", lambda pk: jobs.append((pk, 0.0)))
    monkeypatch.setattr(
        tasks.deliver_notification, "apply_async", lambda args, countdown=0.0: jobs.append((args[0], countdown))
    )
    return jobs
