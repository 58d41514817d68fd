"""Killing a real Celery worker during planning or evaluation loses and doubles nothing.

A worker runs as its own process on the real Redis broker and the test database. The
test holds a row lock that the job needs, so the job stops mid-way (inside its
transaction, holding the rollout's advisory lock, some of its writes already made); the
worker is killed with SIGKILL. Its database connection dies with it, PostgreSQL rolls the
transaction back and frees the locks, and a second worker does the work once.
Nothing here sleeps for a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connections

from audit.models import AuditEntry
from cot.database.scope import statement_of
from devices.models import DeviceType
from firmware import locks
from firmware.models import Rollout, RolloutTarget, RolloutWave
from firmware.services import do_create_rollout, do_plan_rollout, do_start_rollout
from firmware.tasks import evaluate_rollouts, plan_rollout, rollout_watchdog
from tests.firmware.processes import DEADLINE, Worker, advisory_lock_holders, blocked_by, query, wait_for
from tests.firmware.rollout_scene import counters_exact, in_wave, planned, states, walk, wave
from tests.firmware.test_rollout_planning import devices, image_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


def blocking_connection() -> Any:
    """A connection of the test's own, in a transaction, to hold row locks; (connection, its backend pid)."""
    blocker = connections["default"].get_new_connection(connections["default"].get_connection_params())
    blocker.autocommit = False
    with blocker.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return blocker, cursor.fetchone()[0]


def test_a_worker_killed_during_planning_loses_and_doubles_nothing(
    acme, acme_admin, sensor: DeviceType, processes, tmp_path
):
    fleet = devices(acme, 50, device_type=sensor)
    image = image_for(acme, sensor)
    draft = do_create_rollout(image=image, name="Kill test", waves=[{"percent": 10}, {}], actor=acme_admin)

    blocker, holder = blocking_connection()
    try:
        with blocker.cursor() as cursor:  # hold the image row: the planning job waits for it, mid-transaction
            cursor.execute("SELECT id FROM firmware_firmwareimage WHERE id = %s FOR UPDATE", [image.pk])

        rollout = do_plan_rollout(draft, actor=acme_admin)  # commits, then sends the job to Redis
        assert rollout.status == "planning"
        first = Worker(tmp_path / "worker-1.log")
        processes.append(first)

        def planner_blocked() -> bool:
            return bool(blocked_by(holder)) and advisory_lock_holders(locks.PLANNING, rollout.pk) == 1

        wait_for(planner_blocked, "the planning job to block on the image row", first)
        first.kill()
        assert Rollout.objects.get(pk=rollout.pk).status == "planning"
        assert not RolloutTarget.objects.filter(rollout=rollout).exists()
        blocker.commit()  # the orphaned backend gets the row, finds its client gone, rolls back
    finally:
        blocker.close()
    wait_for(
        lambda: advisory_lock_holders(locks.PLANNING, rollout.pk) == 0, "PostgreSQL to drop the dead worker's lock"
    )
    assert Rollout.objects.get(pk=rollout.pk).status == "planning"
    assert not RolloutTarget.objects.filter(rollout=rollout).exists()

    second = Worker(tmp_path / "worker-2.log", COT_ROLLOUT_PLANNING_STALE_SECONDS="0")
    processes.append(second)
    assert rollout_watchdog.delay().get(timeout=DEADLINE) == [rollout.pk]
    wait_for(lambda: Rollout.objects.get(pk=rollout.pk).status == "ready", "the re-queued planning", second)

    done = Rollout.objects.get(pk=rollout.pk)
    assert done.planned_total == 50 and done.plan_attempts == 2
    targets = RolloutTarget.objects.filter(rollout=rollout)
    assert targets.count() == 50
    assert sorted(targets.values_list("device_id", flat=True)) == sorted(d.pk for d in fleet)
    assert counters_exact(done)
    assert AuditEntry.objects.filter(event="firmware.rollout.plan", object_id=str(rollout.pk)).count() == 1
    requeued = AuditEntry.objects.get(event="firmware.rollout.plan_requeued", object_id=str(rollout.pk))
    assert requeued.actor_label == "job firmware.tasks.rollout_watchdog"

    # The lost message, delivered again later (acks_late), and the watchdog again: nothing twice.
    assert plan_rollout.delay(rollout.pk).get(timeout=DEADLINE) == "ready"
    assert rollout_watchdog.delay().get(timeout=DEADLINE) == []
    assert RolloutTarget.objects.filter(rollout=rollout).count() == 50
    assert AuditEntry.objects.filter(event="firmware.rollout.plan", object_id=str(rollout.pk)).count() == 1


def wave_moves(rollout: Rollout) -> list[tuple[int, str, str]]:
    """The audited wave moves of ``rollout``, in order: (wave index, from, to)."""
    entries = AuditEntry.objects.filter(event="firmware.rollout.wave", object_id=str(rollout.pk)).order_by("pk")
    return [(e.additional_data["wave"], e.additional_data["from"], e.additional_data["to"]) for e in entries]


def test_a_worker_killed_during_evaluation_loses_and_doubles_nothing(
    acme, acme_admin, sensor: DeviceType, processes, tmp_path
):
    image = image_for(acme, sensor)
    canary = {"count": 2, "success_threshold": 50, "min_finished": 1, "soak_seconds": 3600}
    rollout = planned(image, 6, device_type=sensor, waves=[canary, {}], max_retries=2)
    do_start_rollout(rollout, actor=acme_admin)
    first = Worker(tmp_path / "worker-1.log")
    processes.append(first)
    assert evaluate_rollouts.delay().get(timeout=DEADLINE) == {"wave_started": 1}  # a tick the first worker runs
    assert wave(rollout, 0).status == "active"
    # The canaries report: one succeeded, one failed with retries left. The next tick retries
    # the failed one (a target and counter write) and then moves the wave to soaking.
    healthy, flaky = in_wave(rollout, 0)
    walk(RolloutTarget.objects.filter(pk=healthy.pk), "succeeded")
    walk(RolloutTarget.objects.filter(pk=flaky.pk), "failed", error_code="install_failed")
    before = states(rollout)
    assert before == {"succeeded": 1, "failed": 1, "pending": 4}

    blocker, holder = blocking_connection()
    try:
        with blocker.cursor() as cursor:
            # The wave's row, against its UPDATE (FOR NO KEY UPDATE: the counter rows' foreign key checks pass).
            cursor.execute("SELECT id FROM firmware_rolloutwave WHERE id = %s FOR NO KEY UPDATE", [wave(rollout, 0).pk])
        evaluate_rollouts.delay()  # its result never comes: the worker dies with it

        def evaluation_blocked() -> bool:
            return bool(blocked_by(holder)) and advisory_lock_holders(locks.EVALUATION, rollout.pk) == 1

        wait_for(evaluation_blocked, "the evaluation tick to block on the wave row", first)
        # Mid-transaction: the wave's move waits, the retry before it has written targets and counters.
        waiting = "FROM pg_stat_activity AS a WHERE %s = ANY(pg_blocking_pids(a.pid))"
        assert statement_of(query(f"SELECT a.query {waiting}", [holder])).startswith('UPDATE "firmware_rolloutwave"')
        written = query(
            "SELECT array_agg(DISTINCT l.relation::regclass::text ORDER BY l.relation::regclass::text)"
            f" FROM pg_locks AS l WHERE l.mode = 'RowExclusiveLock' AND l.pid IN (SELECT a.pid {waiting})",
            [holder],
        )
        assert {"firmware_rollouttarget", "firmware_rolloutcounter"} <= set(written), written
        first.kill()
        blocker.commit()  # the orphaned backend gets the row, finds its client gone, rolls back
    finally:
        blocker.close()
    wait_for(
        lambda: advisory_lock_holders(locks.EVALUATION, rollout.pk) == 0, "PostgreSQL to drop the dead worker's lock"
    )
    assert states(rollout) == before  # the retry rolled back with the rest
    assert wave(rollout, 0).status == "active" and wave(rollout, 0).soaking_since is None
    assert wave_moves(rollout) == [(0, "pending", "active")]
    assert counters_exact(rollout)

    second = Worker(tmp_path / "worker-2.log")
    processes.append(second)
    assert evaluate_rollouts.delay().get(timeout=DEADLINE) == {"soaking": 1}
    assert states(rollout) == {"succeeded": 1, "pending": 5}
    assert RolloutTarget.objects.get(pk=flaky.pk).attempts == 1  # retried once, its attempt kept
    assert wave(rollout, 0).status == "soaking"
    assert wave_moves(rollout) == [(0, "pending", "active"), (0, "active", "soaking")]
    assert counters_exact(rollout)

    # The lost message delivered again later (acks_late), and more ticks: nothing twice.
    for _ in range(2):
        assert evaluate_rollouts.delay().get(timeout=DEADLINE) == {"idle": 1}
    assert states(rollout) == {"succeeded": 1, "pending": 5}
    assert wave_moves(rollout) == [(0, "pending", "active"), (0, "active", "soaking")]
    assert RolloutWave.objects.get(pk=wave(rollout, 0).pk).status == "soaking"
    assert counters_exact(rollout)
    assert Rollout.objects.get(pk=rollout.pk).status == "running"
