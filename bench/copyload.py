"""The ingest reference: raw ``COPY`` into ``devices_measurement``, no Django involved.

Runs in spawned worker processes (one connection each) so the reference, like the HTTP
load, uses both cores. Imports nothing of the project: only psycopg2.
"""

from __future__ import annotations

import io
import multiprocessing
import time

import psycopg2

COPY_SQL = "COPY devices_measurement (tenant_id, device_id, time, type, series, value, unit) FROM STDIN"


def _worker(dsn: str, batches: list[bytes], warm_until: float, stop_at: float) -> int:
    """COPY the batches in turn, one transaction each, until ``stop_at``; rows committed in the window."""
    counted = 0
    rows_per_batch = [batch.count(b"\n") for batch in batches]
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cursor:
            n = 0
            while (started := time.time()) < stop_at:
                index = n % len(batches)
                cursor.copy_expert(COPY_SQL, io.BytesIO(batches[index]))
                conn.commit()
                if started >= warm_until and time.time() <= stop_at:
                    counted += rows_per_batch[index]
                n += 1
    finally:
        conn.close()
    return counted


def copy_rows_per_second(dsn: str, batches: list[bytes], *, processes: int, warmup: float, seconds: float) -> float:
    """Rows per second that ``processes`` parallel COPY streams commit, after ``warmup`` seconds."""
    start = time.time() + 1.0  # time for the workers to start and connect
    warm_until = start + warmup
    stop_at = warm_until + seconds
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.starmap_async(_worker, [(dsn, batches, warm_until, stop_at)] * processes)
        counted = results.get(timeout=stop_at - time.time() + 60)
    return sum(counted) / seconds
