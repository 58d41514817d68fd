"""Benchmarks 7 and 8: the device update protocol at 100,000 pending targets.

A tenant gets ``COT_BENCH_UPDATE_DEVICES`` devices (100,000 by default) of one type,
inserted set-based, each with its own device credential (random secrets, stored as the
same keyed hash ``devices.services`` stores, written in one UPDATE). One rollout over all
of them is planned by the real job body and started; its waves are 40 % (polled for
offers), 40 % (report status) and the rest (never started). All targets are pending then.

7. ``GET /api/device/v1/firmware/next`` p95, one request at a time (as the list
   benchmarks), for two kinds of device: one of the started first wave, whose poll offers
   its target (pending → offered: advisory lock, anti-rollback floor, the counted move,
   the offer with its manifest; every round takes devices not polled before), and one of
   the wave not started, answered 204. The reference is ``/bench/noop``'s p95, the floor
   of any request through gunicorn. Target (issue 11): p95 at most 10 ms. wrk's latency
   includes the loopback round trip (about 0.1 ms), so it bounds the server's time from above.
8. ``POST /api/device/v1/firmware/status`` requests/s from one in-flight request per
   gunicorn thread: the second wave's targets are offered set-based (``move_targets``,
   counters kept), then each round sends, for targets not used before and per group of 50,
   every ``downloading`` report, then every ``downloaded``, ``verified``, ``installing`` and
   ``succeeded`` (with the image's version), as a device reports: each request moves its
   target one step (a round that wraps around sends duplicates, answered 200 unchanged;
   one that ends early leaves targets part-way). The reference is
   ``/bench/noop``'s requests/s with the same connections. Target: at least 1,000/s, and
   the sharded counters equal to a recount of the targets after the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from bench.core import GUNICORN_THREADS, GUNICORN_WORKERS, ROUNDS, VAR, Row, in_rounds, load, log, warm_up
from bench.data import maintain, write_lines
from bench.rollouts import IMAGE_VERSION, fleet_of_one_type, planned_rollout, released_image
from devices.models import Device
from firmware import counters
from firmware.counters import Sql
from firmware.models import Rollout, RolloutTarget, RolloutWave
from firmware.services import do_start_rollout
from firmware.services.rollout_actions import activate_wave
from tenants.models import Tenant
from tenants.tokens import new_secret, secret_digest, shown_prefix

DEVICES = int(os.environ.get("COT_BENCH_UPDATE_DEVICES", "100000"))
POLL = "/api/device/v1/firmware/next?security_version=0"
STATUS = "/api/device/v1/firmware/status"
NOOP = "/bench/noop"
MAX_POLL_P95_MS = 10.0
MIN_REPORTS_PER_SECOND = 1000.0
CONNECTIONS = GUNICORN_WORKERS * GUNICORN_THREADS
WAVES = [{"percent": 40}, {"percent": 40}, {}]
# Reports go out per group of this many targets, each step for all of them before the next step:
# a device's reports stay in order (far more apart than requests in flight) and any stretch of
# the load has every kind of report in it.
STEP_GROUP = 50


def _issue_credentials(tenant: Tenant) -> dict[int, str]:
    """A fresh credential for every device of ``tenant``, hashed as ``issue_device_credential`` does; id → secret."""
    ids = list(Device.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))
    secrets = [new_secret(settings.DEVICE_CREDENTIAL_PREFIX) for _ in ids]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE devices_device AS device
            SET credential_digest = issued.digest, credential_prefix = issued.prefix, credential_issued_at = now()
            FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS issued (id, digest, prefix)
            WHERE device.id = issued.id
            """,
            [ids, [secret_digest(s) for s in secrets], [shown_prefix(s) for s in secrets]],
        )
    maintain("default", "VACUUM ANALYZE devices_device")
    return dict(zip(ids, secrets, strict=True))


def _slices(items: list[tuple[int, int]], parts: int) -> list[list[tuple[int, int]]]:
    size = len(items) // parts
    return [items[n * size : (n + 1) * size] for n in range(parts)]


def _exact(rollout: Rollout) -> bool:
    """The sharded counters say what a recount of the targets says, for every wave.

    Both are read from one snapshot: gunicorn may still be finishing requests wrk gave
    up on, and a report that commits between two separate reads would look like drift.
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        wave_ids = list(RolloutWave.objects.filter(rollout=rollout).values_list("pk", flat=True))
        return counters.counts(wave_ids) == counters.recount(wave_ids)


def _targets(wave: RolloutWave) -> list[tuple[int, int]]:
    """``(device id, target id)`` of the wave's targets (planning drew them at random from the whole fleet)."""
    rows = RolloutTarget.objects.filter(wave=wave).order_by("device_id").values_list("device_id", "pk")
    return list(rows)


def device_updates() -> list[Row]:
    """Poll p95 (offer and nothing to do) and status reports per second, at ``DEVICES`` pending targets."""
    tenant, type_id = fleet_of_one_type("bench-updates", DEVICES)
    log(f"issuing {DEVICES:,} device credentials (keyed hashes, one UPDATE)")
    secrets = _issue_credentials(tenant)
    image = released_image(tenant, type_id)
    rollout = planned_rollout(tenant, image, "Bench updates", WAVES)
    pending = RolloutTarget.objects.filter(rollout=rollout, status=RolloutTarget.Status.PENDING).count()
    if pending != DEVICES:
        raise RuntimeError(f"Expected {DEVICES:,} pending targets, found {pending:,}.")
    do_start_rollout(rollout, actor=None)
    offered_wave, reporting_wave, idle_wave = RolloutWave.objects.filter(rollout=rollout).order_by("index")
    activate_wave(offered_wave)
    activate_wave(reporting_wave)
    rows = _poll_rows(secrets, offered_wave, idle_wave, pending)
    rows.append(_status_row(rollout, secrets, reporting_wave))
    return rows


def _poll_rows(secrets: dict[int, str], offered_wave: RolloutWave, idle_wave: RolloutWave, pending: int) -> list[Row]:
    # A fresh slice of never-polled devices for the warm-up and for each round.
    fresh = iter(_slices(_targets(offered_wave), ROUNDS + 1))

    def tokens(name: str, devices: list[tuple[int, int]]) -> Path:
        return write_lines(VAR / f"poll-{name}.txt", [secrets[device] for device, _ in devices])

    idle = tokens("idle", _targets(idle_wave))
    noop = VAR / "noop-token.txt"
    write_lines(noop, [secrets[next(iter(secrets))]])

    def offering() -> float:
        return load(POLL, tokens=tokens("offer", next(fresh)), connections=1).p95_ms

    log(f"device poll at {pending:,} pending targets: p95, 1 connection")
    warm_up(NOOP, method="POST", tokens=noop, connections=1)
    warm_up(POLL, tokens=tokens("offer", next(fresh)), connections=1)
    warm_up(POLL, tokens=idle, connections=1)
    figures = in_rounds(
        {
            "no-DB view p95 ms": lambda: load(NOOP, method="POST", tokens=noop, connections=1).p95_ms,
            "poll, offer p95 ms": offering,
            "poll, nothing to do p95 ms": lambda: load(POLL, tokens=idle, connections=1).p95_ms,
        }
    )
    offered = RolloutTarget.objects.filter(wave=offered_wave, status=RolloutTarget.Status.OFFERED).count()
    log(f"  {offered:,} targets offered by the polls")
    if not offered:
        raise RuntimeError("The polls offered nothing.")
    reference = min(figures["no-DB view p95 ms"])
    rows = []
    for name, title in (
        ("poll, offer p95 ms", "Device poll p95, offers its target"),
        ("poll, nothing to do p95 ms", "Device poll p95, nothing to do (204)"),
    ):
        measured = min(figures[name])
        rows.append(
            Row(
                f"{title}, {pending:,} pending targets",
                measured,
                reference,
                "ms",
                f"<= {MAX_POLL_P95_MS:g} ms",
                measured <= MAX_POLL_P95_MS,
                "no-DB view",
                {name: figures[name], "no-DB view p95 ms": figures["no-DB view p95 ms"]},
            )
        )
    return rows


def _report_lines(secrets: dict[int, str], targets: list[tuple[int, int]]) -> list[str]:
    """``token<TAB>body``: per group of ``STEP_GROUP`` targets, each one's downloading report, then downloaded, …"""
    reports = (
        {"status": "downloading", "progress": 10},
        {"status": "downloaded"},
        {"status": "verified"},
        {"status": "installing"},
        {"status": "succeeded", "version": IMAGE_VERSION},
    )
    return [
        f"{secrets[device]}\t{json.dumps({'target': target, **report})}"
        for first in range(0, len(targets), STEP_GROUP)
        for report in reports
        for device, target in targets[first : first + STEP_GROUP]
    ]


def _status_row(rollout: Rollout, secrets: dict[int, str], wave: RolloutWave) -> Row:
    now = timezone.now()
    moved = counters.move_targets(
        RolloutTarget.objects.filter(wave=wave),
        RolloutTarget.Status.OFFERED,
        attempts=Sql("attempts + 1"),
        offered_at=now,
        changed_at=now,
    )
    log(f"status reports: {moved:,} targets offered set-based; {CONNECTIONS} connections")
    fresh = iter(_slices(_targets(wave), ROUNDS + 1))

    def tokens() -> Path:
        return write_lines(VAR / "status-reports.txt", _report_lines(secrets, next(fresh)))

    def reports() -> float:
        return load(STATUS, method="POST", tokens=tokens(), connections=CONNECTIONS).per_second

    noop = write_lines(VAR / "noop-reports.txt", _report_lines(secrets, _targets(wave)[:1000]))
    http: dict[str, Any] = {"method": "POST", "connections": CONNECTIONS}
    warm_up(NOOP, tokens=noop, **http)
    warm_up(STATUS, tokens=tokens(), **http)
    figures = in_rounds(
        {
            "no-DB view req/s": lambda: load(NOOP, tokens=noop, **http).per_second,
            "status reports/s": reports,
        }
    )
    exact = _exact(rollout)
    done = RolloutTarget.objects.filter(wave=wave, status=RolloutTarget.Status.SUCCEEDED).count()
    log(f"  {done:,} targets succeeded; counters {'exact' if exact else 'DIFFER from the recount'}")
    measured, reference = max(figures["status reports/s"]), max(figures["no-DB view req/s"])
    return Row(
        "Status reports (downloading … succeeded)",
        measured,
        reference,
        "req/s",
        f">= {MIN_REPORTS_PER_SECOND:,.0f}/s, counters exact" + ("" if exact else " (they DIFFER)"),
        measured >= MIN_REPORTS_PER_SECOND and exact,
        "no-DB view",
        figures,
    )
