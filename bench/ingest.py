"""Benchmarks 1 and 2: device API ingest against raw ``COPY`` and against a no-database endpoint.

1. ``POST /api/device/v1/measurements`` with 1,000 measurements per request must reach
   half the rows/s that raw ``COPY`` of the same rows into the same table reaches.
2. Single-measurement POSTs must reach 40 % of the requests/s of ``/bench/noop``, a
   Django view that does nothing, served by the same gunicorn through the same middleware.

Both loads rotate over the credentials of several devices, like a fleet would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from psycopg2.extensions import make_dsn

from bench import copyload
from bench.core import GUNICORN_THREADS, GUNICORN_WORKERS, SECONDS, VAR, Row, in_rounds, load, log, warm_up
from bench.data import bench_tenant, maintain, registered_devices, write_lines
from bench.rls import on_and_off
from devices.models import Device, Measurement

BATCH = 1000
DEVICES = 20
# One request in flight per gunicorn thread (workers x threads); the COPY
# reference uses as many parallel connections.
CONNECTIONS = GUNICORN_WORKERS * GUNICORN_THREADS
ENDPOINT = "/api/device/v1/measurements"
SERIES = [
    ("c8y_Temperature", "T", "C", 21.0),
    ("c8y_Humidity", "H", "%RH", 45.0),
    ("c8y_Pressure", "P", "hPa", 1013.0),
    ("c8y_Battery", "V", "V", 3.7),
]


@dataclass(frozen=True)
class Fleet:
    """The ingest tenant's devices: ids and a file of their credentials for wrk."""

    tenant_id: int
    device_ids: list[int]
    credentials: Path


def fleet() -> Fleet:
    """A tenant (limits out of reach) with ``DEVICES`` registered devices."""
    tenant = bench_tenant("bench-ingest")
    credentials = registered_devices(tenant, DEVICES)
    device_ids = list(Device.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))
    return Fleet(tenant.pk, device_ids, write_lines(VAR / "device-credentials.txt", credentials))


def measurements(count: int) -> list[dict[str, Any]]:
    """``count`` realistic measurements, one per 100 ms going back from an hour ago."""
    base = datetime.now(UTC) - timedelta(hours=1)
    items = []
    for n in range(count):
        kind, series, unit, typical = SERIES[n % len(SERIES)]
        time = (base - timedelta(milliseconds=100 * n)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        items.append(
            {"time": time, "type": kind, "series": series, "value": round(typical + (n % 17) * 0.13, 2), "unit": unit}
        )
    return items


def copy_bytes(tenant_id: int, device_id: int, items: list[dict[str, Any]]) -> bytes:
    """The items as COPY text, made by the same function the device API uses."""
    prefix = f"{tenant_id}\t{device_id}\t"
    # Validation keeps names and units free of tab, newline and backslash: no escaping needed.
    return "".join(
        f"{prefix}{datetime.fromisoformat(i['time']).isoformat()}\t{i['type']}\t{i['series']}\t{float(i['value'])!r}\t{i['unit']}\n"
        for i in items
    ).encode()


def _telemetry_dsn() -> str:
    """The telemetry database with Django's connection options, as its owner.

    The owner, because PostgreSQL refuses ``COPY FROM`` into a table with row-level
    security to the application's role: the reference is the unrestricted bulk path.
    """
    db = settings.DATABASES["telemetry"]
    owner = settings.MIGRATION_DATABASES["telemetry"]
    options = {key: str(value) for key, value in db.get("OPTIONS", {}).items() if key != "cursor_factory"}
    return str(
        make_dsn(
            host=owner["HOST"],
            port=owner["PORT"],
            dbname=db["NAME"],
            user=owner["USER"],
            password=owner["PASSWORD"],
            **options,
        )
    )


def empty_measurements() -> None:
    """Start each phase from an empty table and a fresh checkpoint, so neither pays for the other."""
    maintain("telemetry", "TRUNCATE devices_measurement", "CHECKPOINT")


def stored_rows() -> int:
    """Rows now in the table (to prove the HTTP load really stored what it reports)."""
    count = Measurement.objects.count()
    connections["telemetry"].close()
    return count


def batch_ingest_with_and_without_rls(devices: Fleet) -> Row:
    """Batch ingest rows/s over HTTP with row-level security on and off."""
    items = measurements(BATCH)
    body = VAR / "batch.json"
    body.write_text(json.dumps(items))
    http: dict[str, Any] = {"method": "POST", "body": body, "tokens": devices.credentials, "connections": CONNECTIONS}

    def over_http() -> float:
        empty_measurements()
        result = load(ENDPOINT, **http)
        return result.requests * BATCH / result.seconds

    log("batch ingest over HTTP: row-level security on vs off")
    return on_and_off(
        "Batch ingest over HTTP (1,000 per request): RLS on (reference: off)",
        "rows/s",
        over_http,
        higher_is_better=True,
    )


def batch_ingest(devices: Fleet) -> Row:
    """Benchmark 1: rows/s over HTTP in batches of 1,000 vs raw COPY of the same batches."""
    items = measurements(BATCH)
    body = VAR / "batch.json"
    body.write_text(json.dumps(items))
    batches = [copy_bytes(devices.tenant_id, device_id, items) for device_id in devices.device_ids]
    http: dict[str, Any] = {"method": "POST", "body": body, "tokens": devices.credentials, "connections": CONNECTIONS}

    def raw_copy() -> float:
        empty_measurements()
        return copyload.copy_rows_per_second(
            _telemetry_dsn(), batches, processes=CONNECTIONS, warmup=1.0, seconds=SECONDS
        )

    def over_http() -> float:
        empty_measurements()
        result = load(ENDPOINT, **http)
        if stored_rows() < result.requests * BATCH:
            raise RuntimeError("The batch ingest stored fewer rows than it reported.")
        return result.requests * BATCH / result.seconds

    log(f"batch ingest: raw COPY vs HTTP, {CONNECTIONS} connections, {BATCH} rows per COPY / request")
    warm_up(ENDPOINT, **http)
    figures = in_rounds({"raw COPY rows/s": raw_copy, "HTTP rows/s": over_http})
    measured, reference = max(figures["HTTP rows/s"]), max(figures["raw COPY rows/s"])
    return Row(
        "Batch ingest over HTTP (1,000 per request)",
        measured,
        reference,
        "rows/s",
        ">= 0.50 x raw COPY",
        measured >= 0.5 * reference,
        "raw COPY",
        figures,
    )


def single_posts(devices: Fleet) -> Row:
    """Benchmark 2: single-measurement POSTs/s vs the no-database endpoint's requests/s."""
    body = VAR / "single.json"
    body.write_text(json.dumps(measurements(1)[0]))
    http: dict[str, Any] = {"method": "POST", "body": body, "tokens": devices.credentials, "connections": CONNECTIONS}

    def device_api() -> float:
        empty_measurements()
        result = load(ENDPOINT, **http)
        if stored_rows() < result.requests:
            raise RuntimeError("The single POSTs stored fewer rows than they reported.")
        return result.per_second

    log(f"single POSTs: /bench/noop vs the device API, {CONNECTIONS} connections")
    warm_up("/bench/noop", **http)
    warm_up(ENDPOINT, **http)
    figures = in_rounds({"no-DB view req/s": lambda: load("/bench/noop", **http).per_second, "POST req/s": device_api})
    measured, reference = max(figures["POST req/s"]), max(figures["no-DB view req/s"])
    return Row(
        "Single-measurement POST",
        measured,
        reference,
        "req/s",
        ">= 0.40 x no-DB endpoint",
        measured >= 0.4 * reference,
        "no-DB view",
        figures,
    )
