"""Concurrent polls and reports of one device: one open target at most, and no report applied twice."""

from __future__ import annotations

from typing import Any

import pytest

from devices.models import DeviceType
from firmware.models import RolloutTarget
from firmware.services.device_updates import OFFER_LOCK, Answer, Report, next_offer, report_status
from tests.firmware.updates import device_of, running, signed_image
from tests.support.races import race

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


def test_a_poll_waiting_for_a_concurrent_offer_returns_that_one_instead_of_a_second(
    acme: Any, acme_admin: Any, sensor: DeviceType
) -> None:
    device, _ = device_of(acme, sensor)
    first = running(signed_image(acme, sensor, version="2.0.0"), acme_admin)
    second = running(signed_image(acme, sensor, version="2.0.1"), acme_admin)
    theirs = RolloutTarget.objects.get(rollout=second, device=device)
    outcome = race(
        "default",
        [
            # Another poll of the same device holds the device's offer lock and offers the second rollout.
            ("SELECT pg_advisory_xact_lock(%s, %s)", [OFFER_LOCK, device.pk]),
            ("UPDATE firmware_rollouttarget SET status = 'offered' WHERE id = %s", [theirs.pk]),
        ],
        lambda: next_offer(device, security_version=0),
    )
    assert isinstance(outcome, RolloutTarget) and outcome.pk == theirs.pk
    assert RolloutTarget.objects.get(rollout=first, device=device).status == "pending"
    assert RolloutTarget.objects.filter(device=device, status="offered").count() == 1


def test_a_report_racing_a_cancel_answers_the_cancel(acme: Any, acme_admin: Any, sensor: DeviceType) -> None:
    device, _ = device_of(acme, sensor)
    rollout = running(signed_image(acme, sensor), acme_admin)
    target = next_offer(device, security_version=0)
    assert isinstance(target, RolloutTarget)
    outcome = race(
        "default",
        [("UPDATE firmware_rollouttarget SET status = 'canceled' WHERE id = %s", [target.pk])],
        lambda: report_status(device, Report(target_id=target.pk, status="downloading")),
    )
    assert isinstance(outcome, Answer) and outcome.status == "canceled"
    assert RolloutTarget.objects.get(rollout=rollout, device=device).status == "canceled"
