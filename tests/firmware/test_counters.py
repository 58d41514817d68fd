"""Target moves keep the sharded counters in step; a recount repairs drift."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from firmware import counters
from firmware.models import RolloutCounter, RolloutTarget
from firmware.services import do_create_rollout
from tests.firmware.test_rollout_planning import devices, image_for, plan

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def planned(acme: Any, sensor: Any) -> Any:
    devices(acme, 10, device_type=sensor)
    rollout = do_create_rollout(
        image=image_for(acme, sensor), name="R", waves=[{"count": 3}, {}], actor=None, tenant=acme
    )
    return plan(rollout, actor=None)


def wave_ids(rollout: Any) -> list[int]:
    return list(rollout.waves.order_by("index").values_list("pk", flat=True))


def test_planning_counts_every_target_pending(planned):
    first, last = wave_ids(planned)
    assert counters.counts([first, last]) == {first: {"pending": 3}, last: {"pending": 7}}


def test_a_move_counts_once_and_a_repeat_changes_nothing(planned):
    first, _ = wave_ids(planned)
    target = RolloutTarget.objects.filter(wave_id=first).earliest("pk")
    one = RolloutTarget.objects.filter(pk=target.pk)
    assert counters.move_targets(one, "offered", attempts=counters.Sql("attempts + 1")) == 1
    assert counters.move_targets(one, "offered", attempts=counters.Sql("attempts + 1")) == 0  # not from offered
    target.refresh_from_db()
    assert (target.status, target.attempts) == ("offered", 1)
    assert counters.counts([first]) == {first: {"pending": 2, "offered": 1}}


def test_a_set_based_move_spans_waves_and_skips_states_that_may_not_move(planned):
    first, last = wave_ids(planned)
    counters.move_targets(RolloutTarget.objects.filter(wave_id=first)[:1], "offered")
    moved = counters.move_targets(RolloutTarget.objects.filter(rollout=planned), "skipped")
    assert moved == 9  # the offered one cannot be skipped
    assert counters.counts([first, last]) == {first: {"offered": 1, "skipped": 2}, last: {"skipped": 7}}


def test_a_limited_batch_moves_at_most_the_limit(planned):
    assert counters.move_targets(RolloutTarget.objects.filter(rollout=planned), "canceled", limit=4) == 4
    assert RolloutTarget.objects.filter(status="canceled").count() == 4


def test_reconcile_repairs_drift_and_reports_the_waves(planned):
    first, last = wave_ids(planned)
    with connection.cursor() as cursor:  # drift: a target changed behind the counters' back
        cursor.execute(
            "UPDATE firmware_rollouttarget SET status = 'failed' WHERE id = %s",
            [RolloutTarget.objects.filter(wave_id=first).earliest("pk").pk],
        )
    assert counters.counts([first]) == {first: {"pending": 3}}
    assert counters.reconcile([first, last]) == [first]
    assert (
        counters.counts([first, last])
        == counters.recount([first, last])
        == {first: {"pending": 2, "failed": 1}, last: {"pending": 7}}
    )
    assert RolloutCounter.objects.filter(wave_id=first).count() == 2


def test_the_single_target_move_is_guarded_counted_and_sets_its_columns(planned):
    first, last = wave_ids(planned)
    target = RolloutTarget.objects.filter(wave_id=first).earliest("pk")
    assert counters.move_target(target.pk, "offered", attempts=counters.Sql("attempts + 1"), error_code="") is True
    assert counters.move_target(target.pk, "offered", attempts=counters.Sql("attempts + 1")) is False  # not again
    assert counters.move_target(target.pk, "downloading", progress=None, error_code="x") is True
    assert counters.move_target(target.pk, "succeeded") is False  # not from downloading
    target.refresh_from_db()
    assert (target.status, target.attempts, target.progress, target.error_code) == ("downloading", 1, None, "x")
    assert counters.move_target(10**12, "offered") is False  # no such target: nothing moves, nothing counted
    assert counters.counts([first, last]) == counters.recount([first, last])
    assert counters.counts([first]) == {first: {"pending": 2, "downloading": 1}}


def _counter_rows(wave_id: int) -> dict[tuple[int, str], int]:
    return {
        (shard, status): devices
        for shard, status, devices in RolloutCounter.objects.filter(wave_id=wave_id).values_list(
            "shard", "status", "devices"
        )
    }


def test_every_move_of_one_target_counts_on_that_targets_own_shard(planned):
    # A report may move its target several steps in one transaction; were each step on a
    # shard of its own (drawn at random), two such reports could lock the same counter rows
    # in opposite orders and deadlock (the status benchmark met it as a 500).
    first, last = wave_ids(planned)
    for target in RolloutTarget.objects.filter(rollout=planned).order_by("pk")[:6]:
        before = _counter_rows(target.wave_id)
        for state in ("offered", "downloading", "downloaded", "verified"):
            assert counters.move_target(target.pk, state) is True
        after = _counter_rows(target.wave_id)
        changed = {key for key in before.keys() | after.keys() if before.get(key, 0) != after.get(key, 0)}
        assert {shard for shard, _ in changed} == {target.pk % RolloutCounter.SHARDS}, changed
    assert counters.counts([first, last]) == counters.recount([first, last])
