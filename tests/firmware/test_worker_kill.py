"""Killing a real Celery worker during planning loses and doubles nothing.

A worker runs as its own process on the real Redis broker and the test database. The
test holds a row lock on the image the planning job locks, so the job stops mid-way
(inside its transaction, holding the rollout's planning lock); the worker is killed with
SIGKILL. Its database connection dies with it and PostgreSQL rolls the transaction back
and frees the lock. A second worker, run with a planning staleness of 0 s, executes the
watchdog job: it finds the rollout in ``planning`` with nobody holding its lock, queues
the job again, and the rollout becomes ``ready`` with one target per device, once.
Nothing here sleeps for a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from audit.models import AuditEntry
from cot.celery import app
from devices.models import DeviceType
from firmware import locks
from firmware.models import Rollout, RolloutTarget
from firmware.services import do_create_rollout, do_plan_rollout
from firmware.tasks import plan_rollout, rollout_watchdog
from tests.firmware.rollout_scene import counters_exact
from tests.firmware.test_rollout_planning import devices, image_for

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


def database_url(alias: str) -> str:
    """The URL of the *test* database behind ``alias`` (the worker must use the same one)."""
    s = connections[alias].settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class Worker:
    """A ``celery worker`` process of its own (solo pool), killed or stopped by the test."""

    def __init__(self, log: Path, **env: str) -> None:
        self.log = log
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cot.settings",
            "DATABASE_URL": database_url("default"),
            "TELEMETRY_DATABASE_URL": database_url("telemetry"),
            **env,
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cot",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
            f"--hostname=kill-test-{uuid.uuid4().hex[:8]}@%h",
        ]
        with log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no acknowledgement, the database connection simply drops."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_for(condition: Callable[[], Any], what: str, worker: Worker | None = None) -> Any:
    """Poll ``condition`` until it is truthy (its value returned), or fail after the deadline."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker is not None and not worker.alive():
            raise AssertionError(f"the worker died while waiting for {what}:\n{worker.output()}")
        time.sleep(0.05)  # polling a condition, not waiting for time to pass
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{worker.output()}" if worker else ""))


def query(sql: str, params: list[Any]) -> Any:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def planning_lock_holders(rollout_id: int) -> int:
    """Backends holding the rollout's planning lock (advisory, two-key form: classid, objid)."""
    return int(
        query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 2",
            [locks.PLANNING, rollout_id],
        )
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    app.control.purge()  # no message of an earlier test run reaches these workers
    yield started
    for worker in started:
        worker.stop()


def test_a_worker_killed_during_planning_loses_and_doubles_nothing(
    acme, acme_admin, sensor: DeviceType, workers, tmp_path
):
    fleet = devices(acme, 50, device_type=sensor)
    image = image_for(acme, sensor)
    draft = do_create_rollout(image=image, name="Kill test", waves=[{"percent": 10}, {}], actor=acme_admin)

    blocker = connections["default"].get_new_connection(connections["default"].get_connection_params())
    try:
        blocker.autocommit = False
        with blocker.cursor() as cursor:  # hold the image row: the planning job waits for it, mid-transaction
            cursor.execute("SELECT id FROM firmware_firmwareimage WHERE id = %s FOR UPDATE", [image.pk])
            cursor.execute("SELECT pg_backend_pid()")
            holder = cursor.fetchone()[0]

        rollout = do_plan_rollout(draft, actor=acme_admin)  # commits, then sends the job to Redis
        assert rollout.status == "planning"
        first = Worker(tmp_path / "worker-1.log")
        workers.append(first)

        def planner_blocked() -> bool:
            blocked = query("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [holder])
            return bool(blocked) and planning_lock_holders(rollout.pk) == 1

        wait_for(planner_blocked, "the planning job to block on the image row", first)
        first.kill()
        assert Rollout.objects.get(pk=rollout.pk).status == "planning"
        assert not RolloutTarget.objects.filter(rollout=rollout).exists()
        blocker.commit()  # the orphaned backend gets the row, finds its client gone, rolls back
    finally:
        blocker.close()
    wait_for(lambda: planning_lock_holders(rollout.pk) == 0, "PostgreSQL to drop the dead worker's lock")
    assert Rollout.objects.get(pk=rollout.pk).status == "planning"
    assert not RolloutTarget.objects.filter(rollout=rollout).exists()

    second = Worker(tmp_path / "worker-2.log", COT_ROLLOUT_PLANNING_STALE_SECONDS="0")
    workers.append(second)
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
