"""The benchmark harness: gunicorn as deployed, bounded wrk load, and the result table.

Every figure is compared with a reference measured in the same run on the same machine,
so the targets are ratios and hold on slower or faster hardware alike.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
LUA = Path(__file__).resolve().parent / "lua" / "load.lua"
HTTP_PORT = int(os.environ.get("COT_BENCH_HTTP_PORT", "55602"))
# Every figure is the best of ROUNDS runs of SECONDS each, alternating with its reference.
ROUNDS = int(os.environ.get("COT_BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("COT_BENCH_SECONDS", "6"))
WARMUP_SECONDS = 3.0
# Read from deploy/gunicorn.conf.py itself; the throughput loads keep every thread busy.
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
_gunicorn_settings = runpy.run_path(str(GUNICORN_CONF))
GUNICORN_WORKERS = int(_gunicorn_settings["workers"])
GUNICORN_THREADS = int(_gunicorn_settings["threads"])
# List latency targets: p95 at the large size at most this times the small size's, and under this.
MAX_P95_RATIO, MAX_P95_MS = 1.5, 50.0
# Hard ceiling on any wrk run beyond its own duration: nothing here can hang.
WRK_GRACE_SECONDS = 30


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, its same-run reference and the target it must meet."""

    benchmark: str
    measured: float
    reference: float
    unit: str
    target: str
    passed: bool
    reference_name: str = ""
    # Every round's figures, for the record (results.json).
    rounds: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.measured / self.reference if self.reference else float("inf")


@dataclass(frozen=True)
class Load:
    """What one wrk run saw."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def log(message: str) -> None:
    """Progress on stderr, so stdout carries only the table."""
    print(f"  bench: {message}", file=sys.stderr, flush=True)


def wrk(
    path: str,
    *,
    seconds: float,
    connections: int,
    method: str = "GET",
    body: Path | None = None,
    tokens: Path | None = None,
    threads: int = 1,
) -> Load:
    """Drive ``path`` on the bench server for ``seconds`` from a separate wrk process on loopback."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (scripts/bench.sh installs it as root: apt-get install wrk).")
    command = [
        binary,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=10s",
        f"--script={LUA}",
        f"http://127.0.0.1:{HTTP_PORT}{path}",
        "--",
        method,
        str(body) if body else "-",
        str(tokens) if tokens else "-",
    ]
    done = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        command, capture_output=True, text=True, timeout=seconds + WRK_GRACE_SECONDS, check=True
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Load(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=errors,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )


def get_json(path: str, token: str) -> Any:
    """One GET on the bench server with a bearer token, as parsed JSON."""
    url, headers = f"http://127.0.0.1:{HTTP_PORT}{path}", {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def load(path: str, *, seconds: float = 0.0, **options: Any) -> Load:
    """One wrk run (``SECONDS`` long by default); any failed request fails the benchmark."""
    result = wrk(path, seconds=seconds or SECONDS, **options)
    if result.errors:
        raise RuntimeError(f"{path}: {result.errors} of {result.requests} requests failed (see var/bench/gunicorn.log)")
    return result


def warm_up(path: str, **options: Any) -> None:
    """A discarded run, so caches, connections and code paths are hot before anything counts."""
    load(path, seconds=WARMUP_SECONDS, **options)


def p95_in_rounds(targets: dict[str, tuple[str, Path]], size: str) -> dict[str, list[float]]:
    """Each caller's p95 latency in ms for its ``(path, tokens file)``, one request at a time, per round."""
    for path, tokens in targets.values():
        warm_up(path, tokens=tokens, connections=1)

    def p95(path: str, tokens: Path) -> Callable[[], float]:
        return lambda: load(path, tokens=tokens, connections=1).p95_ms

    figures = in_rounds({f"{who} p95 ms at {size}": p95(*target) for who, target in targets.items()})
    return {who: figures[f"{who} p95 ms at {size}"] for who in targets}


def scaling_row(title: str, measured: list[float], reference: list[float], reference_name: str) -> Row:
    """A list's best p95 at the large size against the small size's: at most 1.5 times, and under 50 ms."""
    at_large, at_small = min(measured), min(reference)
    return Row(
        title,
        at_large,
        at_small,
        "ms",
        f"<= {MAX_P95_RATIO} x {reference_name}, < {MAX_P95_MS:.0f} ms",
        at_large <= MAX_P95_RATIO * at_small and at_large < MAX_P95_MS,
        reference_name,
        {"p95 ms": measured, f"p95 ms {reference_name}": reference},
    )


def in_rounds(phases: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Run the phases in turn, ``ROUNDS`` times over.

    Alternating figure and reference means that anything else the machine does hits
    both alike; each benchmark then takes the best round of each.
    """
    figures: dict[str, list[float]] = {name: [] for name in phases}
    for number in range(1, ROUNDS + 1):
        for name, phase in phases.items():
            figures[name].append(phase())
            log(f"  round {number}/{ROUNDS}: {name} = {figures[name][-1]:,.1f}")
    return figures


def _wait_until_serving(process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited at start; see var/bench/gunicorn.log")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/bench/noop", timeout=1)
        except urllib.error.HTTPError:
            return  # 405 for GET: Django answers.
        except OSError:
            time.sleep(0.2)
            continue
        return
    raise RuntimeError("gunicorn did not answer within 60 s")


@contextmanager
def gunicorn() -> Iterator[None]:
    """gunicorn with the project's deploy/gunicorn.conf.py (workers, threads, access log) on loopback."""
    log_file = (VAR / "gunicorn.log").open("ab")
    # The dashboard's figures are computed on every request (bench/dashboard.py measures the uncached page).
    env = {**os.environ, "COT_BENCH_ENDPOINTS": "1", "COT_DASHBOARD_CACHE_SECONDS": "0"}
    process = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "cot.wsgi",
            "--config",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{HTTP_PORT}",
            "--pid",
            str(VAR / "gunicorn.pid"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_serving(process, time.monotonic() + 60)
        log(f"gunicorn serving on 127.0.0.1:{HTTP_PORT} (pid {process.pid})")
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log_file.close()


def _figure(value: float, unit: str) -> str:
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def table(rows: list[Row]) -> str:
    """The result table as Markdown (readable in a terminal, pasteable into docs/performance.md)."""
    header = ["benchmark", "measured", "reference", "ratio", "target", "result"]
    lines = [
        [
            row.benchmark,
            _figure(row.measured, row.unit),
            f"{_figure(row.reference, row.unit)} ({row.reference_name})" if row.reference_name else "",
            f"{row.ratio:.2f}",
            row.target,
            "pass" if row.passed else "FAIL",
        ]
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *(fmt(cells) for cells in lines)])
