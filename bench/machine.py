"""What the table was measured on: CPUs, memory, load from other processes, server settings."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from django.db import connections

from bench.core import GUNICORN_THREADS, GUNICORN_WORKERS


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _postgres() -> dict[str, str]:
    """Settings of the telemetry connection, where the ingest benchmarks write."""
    with connections["telemetry"].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit')"
        )
        version, fsync, synchronous_commit = cursor.fetchone()
    return {"version": version, "fsync": fsync, "synchronous_commit": synchronous_commit}


def notes(before: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts about this run; pass the notes taken at the start to record the load at both ends."""
    cpus = os.cpu_count() or 1
    return {
        "cpus": cpus,
        "cpu_model": _cpu_model(),
        "memory_gib": round(_memory_gib(), 1),
        "python": platform.python_version(),
        "postgres": _postgres(),
        "gunicorn_workers": GUNICORN_WORKERS,
        "gunicorn_threads": GUNICORN_THREADS,
        "load_at_start": before["load_at_start"] if before else _load(),
        "load_at_end": _load() if before else None,
    }


def describe(facts: dict[str, Any]) -> str:
    """Two lines for under the table."""
    pg = facts["postgres"]
    return (
        f"Machine: {facts['cpus']} CPUs ({facts['cpu_model']}), {facts['memory_gib']} GiB, Python {facts['python']}, "
        f"PostgreSQL {pg['version']} (fsync={pg['fsync']}, synchronous_commit={pg['synchronous_commit']}), "
        f"gunicorn {facts['gunicorn_workers']} workers x {facts['gunicorn_threads']} threads.\n"
        f"Load average (1 min) at start {facts['load_at_start']:.2f}, at end {facts['load_at_end']:.2f}: "
        "other processes on the machine slow every figure; each is the best of its rounds."
    )
