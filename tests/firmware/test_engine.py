"""The rollout engine: waves, thresholds, soak, advance, finish, cancel, retries, timeouts, reconciliation, watchdog.

Device reports are played with ``firmware.counters.move_targets`` (``rollout_scene.report``);
each tick is ``engine.evaluate_rollouts()`` as the beat schedule runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import current_app
from django.db import connections
from django.utils import timezone

from audit.models import AuditEntry
from devices.models import DeviceType
from firmware import counters, engine, locks
from firmware.models import FirmwareImage, Rollout, RolloutCounter, RolloutTarget, RolloutWave
from firmware.services import (
    do_advance_wave,
    do_cancel_rollout,
    do_create_rollout,
    do_plan_rollout,
    do_resume_rollout,
    do_retry_failed_targets,
    do_start_rollout,
)
from firmware.services.rollouts import run_planning
from tenants.models import Role
from tests.factories import make_user
from tests.firmware.rollout_scene import counters_exact, in_wave, planned, report, states, walk, wave
from tests.firmware.test_rollout_planning import devices, image_for

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def image(acme: Any, sensor: DeviceType) -> FirmwareImage:
    return image_for(acme, sensor)


def tick() -> dict[str, int]:
    return engine.evaluate_rollouts()


def wave_states(rollout: Rollout) -> list[str]:
    return list(RolloutWave.objects.filter(rollout=rollout).order_by("index").values_list("status", flat=True))


def running(
    image: FirmwareImage, sensor: DeviceType, admin: Any, n: int, waves: list[dict[str, Any]], **kw: Any
) -> Rollout:
    rollout = planned(image, n, device_type=sensor, waves=waves, **kw)
    return do_start_rollout(rollout, actor=admin)


@pytest.fixture
def other_connection() -> Iterator[Any]:
    """A second database connection (another worker, another device report)."""
    other = connections["default"].get_new_connection(connections["default"].get_connection_params())
    other.autocommit = True
    yield other
    other.close()


# --- waves -------------------------------------------------------------------------------------


def test_waves_start_one_row_at_a_time_advance_and_the_rollout_finishes(acme_admin, image, sensor):
    rollout = running(
        image,
        sensor,
        acme_admin,
        6,
        [
            {"count": 2, "soak_seconds": 0, "auto_advance": True},
            {"count": 2, "soak_seconds": 0},  # manual advance after this one
            {"success_threshold": 50, "soak_seconds": 0},
        ],
    )
    assert wave_states(rollout) == ["pending"] * 3
    tick()
    assert wave_states(rollout) == ["active", "pending", "pending"]
    assert wave(rollout, 0).started_at is not None
    tick()  # nothing finished: nothing changes
    assert wave_states(rollout) == ["active", "pending", "pending"]
    walk(in_wave(rollout, 0, 1), "succeeded")
    tick()  # 1 of 2 below the 95 % success threshold
    assert wave_states(rollout) == ["active", "pending", "pending"]
    walk(in_wave(rollout, 0), "succeeded")
    tick()  # soaks (0 s), succeeds and, with auto-advance, starts the next wave in one tick
    assert wave_states(rollout) == ["succeeded", "active", "pending"]
    walk(in_wave(rollout, 1), "succeeded")
    tick()
    tick()
    assert wave_states(rollout) == ["succeeded", "succeeded", "pending"]  # waits for a manual advance
    assert Rollout.objects.get(pk=rollout.pk).status == "running"
    do_advance_wave(rollout, actor=acme_admin)
    assert wave_states(rollout) == ["succeeded", "succeeded", "active"]
    walk(in_wave(rollout, 2, 1), "succeeded")  # 1 of 2: the last wave's 50 %
    assert tick() == {"finished": 1}
    finished = Rollout.objects.get(pk=rollout.pk)
    assert finished.status == "finished" and finished.finished_at is not None
    assert states(rollout) == {"succeeded": 5, "skipped": 1}
    assert RolloutTarget.objects.get(rollout=rollout, status="skipped").error_code == "rollout_finished"
    assert counters_exact(rollout)
    wave_events = AuditEntry.objects.filter(event="firmware.rollout.wave", object_id=str(rollout.pk))
    # Two starts by the engine and 3 times (soaking, succeeded); the manual start is firmware.rollout.advance.
    assert wave_events.count() == 8
    assert AuditEntry.objects.filter(event="firmware.rollout.finish", additional_data__skipped=1).exists()
    assert tick() == {}  # a finished rollout is no longer the engine's


def test_a_future_start_time_holds_the_first_wave(acme_admin, image, sensor):
    later = timezone.now() + timedelta(hours=1)
    rollout = running(image, sensor, acme_admin, 2, [{}], start_at=later)
    tick()
    assert wave_states(rollout) == ["pending"]
    Rollout.objects.filter(pk=rollout.pk).update(start_at=timezone.now() - timedelta(seconds=1))
    tick()
    assert wave_states(rollout) == ["active"]


def test_a_paused_or_ready_rollout_is_left_alone(acme_admin, image, sensor):
    ready = planned(image, 2, device_type=sensor, waves=[{}])
    tick()
    assert wave_states(ready) == ["pending"]
    do_start_rollout(ready, actor=acme_admin)
    Rollout.objects.filter(pk=ready.pk).update(status="paused")
    tick()
    assert wave_states(ready) == ["pending"]


def test_soak_time_holds_a_wave_before_it_succeeds(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 4, [{"count": 2, "soak_seconds": 3600, "auto_advance": True}, {}])
    tick()
    walk(in_wave(rollout, 0), "succeeded")
    tick()
    assert wave_states(rollout) == ["soaking", "pending"]
    assert wave(rollout, 0).soaking_since is not None
    tick()
    assert wave_states(rollout) == ["soaking", "pending"]
    RolloutWave.objects.filter(pk=wave(rollout, 0).pk).update(soaking_since=timezone.now() - timedelta(seconds=3601))
    tick()
    assert wave_states(rollout) == ["succeeded", "active"]


# --- thresholds --------------------------------------------------------------------------------


def test_crossing_the_error_threshold_pauses_within_one_tick_and_mails_the_administrators(
    acme, acme_admin, image, sensor, mailoutbox, django_capture_on_commit_callbacks
):
    make_user(acme, Role.Kind.STANDARD)  # not mailed
    other_admin = make_user(acme, Role.Kind.ADMINISTRATOR)
    rollout = running(
        image, sensor, acme_admin, 10, [{"count": 5, "error_threshold": 20, "min_finished": 2}, {}], max_retries=0
    )
    tick()
    walk(in_wave(rollout, 0, 1), "failed", error_code="flash_error")
    tick()  # 1 finished, below min_finished
    assert Rollout.objects.get(pk=rollout.pk).status == "running"
    walk(in_wave(rollout, 0).filter(status="pending")[:1], "succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        assert tick() == {"paused": 1}  # 1 of 2 finished failed: 50 % > 20 %
    paused = Rollout.objects.get(pk=rollout.pk)
    assert paused.status == "paused"
    assert paused.status_reason == "Wave 1: 1 of 2 finished devices failed (50 %), above its error threshold of 20 %."
    assert wave_states(rollout) == ["active", "pending"]  # the wave stays where it was
    (mail,) = mailoutbox
    assert sorted(mail.to) == sorted([acme_admin.email, other_admin.email])
    assert "paused" in mail.subject and paused.status_reason in mail.body
    entry = AuditEntry.objects.get(event="firmware.rollout.pause", object_id=str(rollout.pk))
    assert entry.additional_data["automatic"] is True and entry.actor is None
    # Resuming re-evaluates: still over, paused again at the next tick.
    do_resume_rollout(rollout, actor=acme_admin)
    with django_capture_on_commit_callbacks(execute=True):
        assert tick() == {"paused": 1}
    assert len(mailoutbox) == 2
    # Retrying the failed device brings the wave under the threshold: it runs on.
    do_resume_rollout(rollout, actor=acme_admin)
    assert do_retry_failed_targets(rollout, actor=acme_admin) == 1
    tick()
    assert Rollout.objects.get(pk=rollout.pk).status == "running"


def test_an_error_during_the_soak_pauses_too(acme_admin, image, sensor):
    rollout = running(
        image, sensor, acme_admin, 4, [{"count": 4, "success_threshold": 50, "soak_seconds": 3600}], max_retries=0
    )
    tick()
    walk(in_wave(rollout, 0, 2), "succeeded")
    tick()
    assert wave_states(rollout) == ["soaking"]
    walk(in_wave(rollout, 0).filter(status="pending"), "failed")
    tick()
    assert Rollout.objects.get(pk=rollout.pk).status == "paused"
    assert wave_states(rollout) == ["soaking"]


def test_failures_with_retries_left_go_back_to_pending_and_do_not_count(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 4, [{"count": 2, "error_threshold": 0}, {}], max_retries=1)
    tick()
    failing = in_wave(rollout, 0, 1)
    walk(failing, "timed_out")
    tick()  # attempt 1 of 1 + 1 retry: back to pending, not judged
    target = failing.get()
    assert (target.status, target.attempts, target.started_at, target.error_code) == ("pending", 1, None, "")
    assert Rollout.objects.get(pk=rollout.pk).status == "running"
    walk(failing, "failed")  # the second attempt fails too: retries spent
    tick()
    assert failing.get().status == "failed" and failing.get().attempts == 2
    assert Rollout.objects.get(pk=rollout.pk).status == "paused"
    assert counters_exact(rollout)


def test_the_success_threshold_ignores_skipped_devices(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 4, [{"count": 4, "soak_seconds": 0}])
    tick()
    report(in_wave(rollout, 0, 1), "skipped", error_code="anti_rollback")
    walk(in_wave(rollout, 0).filter(status="pending"), "succeeded")
    assert tick() == {"finished": 1}


# --- cancel ------------------------------------------------------------------------------------


def test_canceling_completes_once_no_device_is_installing(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 4, [{}])
    tick()
    installing = in_wave(rollout, 0, 1)
    walk(installing, "installing")
    do_cancel_rollout(rollout, actor=acme_admin)
    assert tick() == {"canceling": 1}
    assert Rollout.objects.get(pk=rollout.pk).status == "canceling"
    report(installing, "succeeded")  # the flashing device finishes
    assert tick() == {"canceled": 1}
    canceled = Rollout.objects.get(pk=rollout.pk)
    assert canceled.status == "canceled" and canceled.finished_at is not None
    assert states(rollout) == {"succeeded": 1, "canceled": 3}
    assert AuditEntry.objects.filter(event="firmware.rollout.canceled", object_id=str(rollout.pk)).exists()
    assert counters_exact(rollout)


# --- device reports ----------------------------------------------------------------------------


def test_duplicate_and_out_of_order_reports_change_nothing_twice(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 2, [{"min_finished": 2}])
    tick()
    one = in_wave(rollout, 0, 1)
    assert report(one, "offered") == 1
    assert report(one, "downloading") == 1
    first_start = one.get().started_at
    before = dict(RolloutCounter.objects.values_list("pk", "devices"))
    assert report(one, "downloading") == 0  # duplicate
    assert report(one, "offered") == 0  # late, out of order
    assert report(one, "succeeded") == 0  # skips installing: refused
    assert one.get().started_at == first_start and one.get().attempts == 1
    assert dict(RolloutCounter.objects.values_list("pk", "devices")) == before
    walk_from = ["downloaded", "verified", "installing", "succeeded"]
    for state in walk_from:
        assert report(one, state) == 1
        assert report(one, state) == 0
    assert report(one, "failed") == 0  # a late failure after success
    assert states(rollout) == {"succeeded": 1, "pending": 1}
    assert counters_exact(rollout)
    tick()
    tick()
    assert wave_states(rollout) == ["active"]  # 1 finished of min 2, judged once


# --- timeouts ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])
def test_the_timeout_sweep_works_in_batches_and_leaves_locked_rows_for_later(
    acme, acme_admin, image, sensor, other_connection
):
    rollout = running(image, sensor, acme_admin, 7, [{}], device_timeout_seconds=600)
    tick()
    targets = list(RolloutTarget.objects.filter(rollout=rollout).order_by("pk"))
    walk(RolloutTarget.objects.filter(pk__in=[t.pk for t in targets[:6]]), "downloading")
    expired = [t.pk for t in targets[:5]]
    RolloutTarget.objects.filter(pk__in=expired).update(started_at=timezone.now() - timedelta(seconds=601))
    walk(RolloutTarget.objects.filter(pk__in=expired[3:4]), "installing")  # installing times out too
    locked = expired[1]
    with other_connection.cursor() as cursor:  # a device report holds this row right now
        cursor.execute("BEGIN")
        cursor.execute("SELECT id FROM firmware_rollouttarget WHERE id = %s FOR UPDATE", [locked])
        assert engine.sweep_timeouts(batch=2) == 4  # batches of 2, 2, then 0: the locked row skipped
        assert RolloutTarget.objects.get(pk=locked).status == "downloading"
        cursor.execute("COMMIT")
    assert engine.sweep_timeouts(batch=2) == 1  # the next sweep takes it
    swept = RolloutTarget.objects.filter(pk__in=expired)
    assert set(swept.values_list("status", "error_code")) == {("timed_out", "timeout")}
    assert RolloutTarget.objects.get(pk=targets[5].pk).status == "downloading"  # within its timeout
    assert RolloutTarget.objects.get(pk=targets[6].pk).status == "pending"  # offered targets wait
    assert engine.sweep_timeouts(batch=2) == 0
    assert counters_exact(rollout)


def test_sweep_bounds_each_batch(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 5, [{}], device_timeout_seconds=600)
    tick()
    walk(RolloutTarget.objects.filter(rollout=rollout), "downloading")
    RolloutTarget.objects.filter(rollout=rollout).update(started_at=timezone.now() - timedelta(hours=1))
    assert engine.sweep_timeouts(batch=2, max_batches=2) == 4
    assert states(rollout) == {"timed_out": 4, "downloading": 1}


# --- reconciliation ----------------------------------------------------------------------------


def test_reconciliation_repairs_drifted_counters_of_active_waves(acme_admin, image, sensor):
    rollout = running(image, sensor, acme_admin, 4, [{"count": 2}, {}])
    tick()
    walk(in_wave(rollout, 0, 1), "downloading")
    first, second = wave(rollout, 0), wave(rollout, 1)
    RolloutCounter.objects.filter(wave=first, status="pending").update(devices=40)  # drift
    RolloutCounter.objects.filter(wave=second, status="pending").update(devices=9)  # pending wave: later
    assert not counters_exact(rollout)
    assert engine.reconcile_counters() == [first.pk]
    assert engine.reconcile_counters() == []
    assert counters.counts([first.pk]) == counters.recount([first.pk])


# --- several workers ---------------------------------------------------------------------------


def test_a_rollout_another_worker_evaluates_is_skipped(acme_admin, image, sensor, other_connection):
    rollout = running(image, sensor, acme_admin, 2, [{}])
    with other_connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [locks.EVALUATION, rollout.pk])
        assert tick() == {"busy": 1}
        assert wave_states(rollout) == ["pending"]
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [locks.EVALUATION, rollout.pk])
    assert tick() == {"wave_started": 1}


# --- planning and the watchdog -----------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The Celery messages sent (the broker is not needed to see what was queued)."""
    messages: list[tuple[str, Any]] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: messages.append((name, args)))
    return messages


def planning(image: FirmwareImage, sensor: DeviceType, admin: Any, n: int = 3) -> Rollout:
    devices(image.tenant, n, device_type=sensor)
    draft = do_create_rollout(image=image, name="R", waves=[{}], actor=admin)
    return do_plan_rollout(draft, actor=admin)


def test_planning_runs_once_however_often_the_job_is_delivered(acme_admin, image, sensor, other_connection):
    rollout = planning(image, sensor, acme_admin)
    with other_connection.cursor() as cursor:  # a worker is planning it right now
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [locks.PLANNING, rollout.pk])
        assert run_planning(rollout.pk) is None
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [locks.PLANNING, rollout.pk])
    assert Rollout.objects.get(pk=rollout.pk).status == "planning"
    assert run_planning(rollout.pk).status == "ready"  # type: ignore[union-attr]
    assert run_planning(rollout.pk).status == "ready"  # type: ignore[union-attr]
    assert RolloutTarget.objects.filter(rollout=rollout).count() == 3
    assert AuditEntry.objects.filter(event="firmware.rollout.plan", object_id=str(rollout.pk)).count() == 1


def test_the_watchdog_requeues_planning_whose_worker_vanished(
    acme_admin, image, sensor, sent, other_connection, django_capture_on_commit_callbacks, settings
):
    settings.COT_ROLLOUT_PLANNING_STALE_SECONDS = 300
    rollout = planning(image, sensor, acme_admin)
    assert engine.watchdog() == []  # queued a moment ago: its worker may not have started yet
    Rollout.objects.filter(pk=rollout.pk).update(planning_since=timezone.now() - timedelta(seconds=301))
    with other_connection.cursor() as cursor:  # a live worker holds the planning lock
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [locks.PLANNING, rollout.pk])
        assert engine.watchdog() == []
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [locks.PLANNING, rollout.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert engine.watchdog() == [rollout.pk]
    assert sent == [("firmware.tasks.plan_rollout", [rollout.pk])]
    requeued = Rollout.objects.get(pk=rollout.pk)
    assert requeued.plan_attempts == 2 and requeued.planning_since is not None
    assert requeued.planning_since > timezone.now() - timedelta(seconds=5)
    assert AuditEntry.objects.get(event="firmware.rollout.plan_requeued").additional_data["attempt"] == 2
    assert engine.watchdog() == []  # queued again just now
    assert run_planning(rollout.pk).status == "ready"  # type: ignore[union-attr]
    Rollout.objects.filter(pk=rollout.pk).update(planning_since=timezone.now() - timedelta(days=1))
    assert engine.watchdog() == []  # ready: nothing to re-drive


def test_the_watchdog_gives_up_after_the_last_attempt(acme_admin, image, sensor, sent):
    rollout = planning(image, sensor, acme_admin)
    Rollout.objects.filter(pk=rollout.pk).update(
        planning_since=timezone.now() - timedelta(days=1), plan_attempts=engine.MAX_PLAN_ATTEMPTS
    )
    assert engine.watchdog() == []
    failed = Rollout.objects.get(pk=rollout.pk)
    assert failed.status == "plan_failed" and "attempts" in failed.status_reason
    assert not RolloutTarget.objects.filter(rollout=rollout).exists()
