"""Real processes for the firmware tests: a Celery worker and the device simulator, on the test database.

The tests that use them (``test_worker_kill.py``, ``test_rollout_end_to_end.py``) run with
``transaction=True``: what the test writes is committed, so a worker process on the real
Redis broker and the test database sees it, and what the worker writes the test sees.
Nothing here sleeps for a fixed time: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.db import connections

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 90.0


def database_url(alias: str) -> str:
    """The URL of the *test* database behind ``alias`` (a worker must use the same one)."""
    s = connections[alias].settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


class Process:
    """A child process of the test in its own session, its output in ``log``; killed or stopped by the test."""

    def __init__(self, command: Sequence[str], log: Path, **env: str) -> None:
        self.log = log
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "cot.settings",
            "DATABASE_URL": database_url("default"),
            "TELEMETRY_DATABASE_URL": database_url("telemetry"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        with log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                list(command), cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
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

    def output(self, tail: int = 4000) -> str:
        text = self.log.read_text(errors="replace")
        return text[-tail:] if tail else text


class Worker(Process):
    """A ``celery worker`` process of its own (solo pool: one task at a time)."""

    def __init__(self, log: Path, **env: str) -> None:
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
            f"--hostname=test-worker-{uuid.uuid4().hex[:8]}@%h",
        ]
        super().__init__(command, log, **env)


class Simulator(Process):
    """``manage.py simulate_devices`` against a live server: the real simulator, speaking HTTP."""

    def __init__(self, log: Path, *arguments: str) -> None:
        super().__init__([sys.executable, "manage.py", "simulate_devices", *arguments], log)


def wait_for(
    condition: Callable[[], Any], what: str, *watched: Process, deadline: float = DEADLINE, every: float = 0.05
) -> Any:
    """Poll ``condition`` until it is truthy (its value returned), or fail after ``deadline`` seconds.

    A watched process that dies meanwhile fails the wait at once, with its output.
    """
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        for process in watched:
            if not process.alive():
                raise AssertionError(f"{process.log.name} died while waiting for {what}:\n{process.output()}")
        time.sleep(every)  # polling a condition, not waiting for time to pass
    logs = "".join(f"\n--- {p.log.name}:\n{p.output()}" for p in watched)
    raise AssertionError(f"timed out waiting for {what}{logs}")


def query(sql: str, params: list[Any]) -> Any:
    """The first column of the first row of ``sql`` on the test database."""
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def advisory_lock_holders(namespace: int, key: int) -> int:
    """Backends holding the advisory lock ``(namespace, key)`` (two-key form: classid, objid)."""
    return int(
        query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = %s AND objsubid = 2",
            [namespace, key],
        )
    )


def blocked_by(backend_pid: int) -> int:
    """How many backends wait for a lock ``backend_pid`` holds."""
    return int(query("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [backend_pid]))
