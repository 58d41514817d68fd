"""Benchmark 4: ``GET /api/v1/measurements/`` p95 latency at 10,000 and at 1,000,000 measurements.

The issue asks for payload lists whose pagination "stays fast at a million rows". An
administrator lists the tenant's newest measurements and one device's newest
measurements (100 a page, read-scoped token); so does a Standard user holding rights on 3
of 10 groups. The history grows from 10,000 to 1,000,000 rows (set-based, older than
what is there, as a year of history behind live data); the p95 at a million may be at most
1.5 times the p95 at 10,000, and under 50 ms.
"""

from __future__ import annotations

from django.db import connections

from bench.core import VAR, Row, get_json, log, p95_in_rounds, scaling_row
from bench.data import (
    bench_tenant,
    grant_view_change,
    groups_and_types,
    insert_devices,
    maintain,
    user_with_token,
    write_lines,
)
from bench.rls import p95_on_and_off
from cot.db_routers import TELEMETRY_ALIAS
from devices.models import Device
from tenants.models import Role

ENDPOINT = "/api/v1/measurements/?page_size=100"
SMALL, LARGE = 10_000, 1_000_000
DEVICES, GROUPS, GRANTED = 100, 10, 3

# Measurement n (1-based) belongs to device n mod DEVICES and lies n seconds in the past.
_INSERT_MEASUREMENTS = """
INSERT INTO devices_measurement (tenant_id, device_id, time, type, series, value, unit)
SELECT %(tenant)s, (%(devices)s::bigint[])[1 + n %% %(device_count)s],
       now() - n * interval '1 second', 'c8y_Temperature', 'T', 20 + (n %% 50) / 10.0, 'C'
FROM generate_series(%(first)s, %(last)s) AS n
"""


def _insert_measurements(tenant_id: int, device_ids: list[int], first: int, last: int) -> None:
    with connections[TELEMETRY_ALIAS].cursor() as cursor:
        cursor.execute(
            _INSERT_MEASUREMENTS,
            {"tenant": tenant_id, "devices": device_ids, "device_count": len(device_ids), "first": first, "last": last},
        )
    maintain(TELEMETRY_ALIAS, "VACUUM ANALYZE devices_measurement", "CHECKPOINT")


def _check_page(path: str, token: str, devices: set[int]) -> None:
    """A full page, newest first, of the expected devices only."""
    rows = get_json(path, token)["results"]
    if len(rows) != 100:
        raise RuntimeError(f"{path}: expected a full page, got {len(rows)} measurements.")
    if {row["device"] for row in rows} - devices:
        raise RuntimeError(f"{path}: measurements of devices the caller may not see, or did not ask for.")
    if [row["time"] for row in rows] != sorted((row["time"] for row in rows), reverse=True):
        raise RuntimeError(f"{path}: the page is not newest first.")


def measurement_list() -> list[Row]:
    """Three lists' p95 at 10,000 measurements, then at 1,000,000."""
    tenant = bench_tenant("bench-measurements")
    group_ids, type_ids = groups_and_types(tenant, GROUPS, 1)
    insert_devices(tenant, group_ids, type_ids, 1, DEVICES)
    _, admin_token = user_with_token(tenant, Role.Kind.ADMINISTRATOR)
    standard, standard_token = user_with_token(tenant, Role.Kind.STANDARD)
    granted = group_ids[:GRANTED]
    grant_view_change(granted, standard)
    device_ids = list(Device.objects.filter(tenant=tenant).order_by("pk").values_list("pk", flat=True))
    visible = set(Device.objects.filter(group_id__in=granted).values_list("pk", flat=True))
    one = device_ids[0]
    tokens = {"administrator": admin_token, "standard user": standard_token}
    files = {
        who: write_lines(VAR / f"token-measurements-{who.replace(' ', '-')}.txt", [token])
        for who, token in tokens.items()
    }
    lists = {
        "administrator, tenant": (ENDPOINT, "administrator", set(device_ids)),
        "administrator, one device": (f"{ENDPOINT}&device={one}", "administrator", {one}),
        f"standard user ({GRANTED} of {GROUPS} groups), tenant": (ENDPOINT, "standard user", visible),
    }
    targets = {name: (path, files[who]) for name, (path, who, _) in lists.items()}

    figures = {}
    for size, first, last in (("10k", 1, SMALL), ("1M", SMALL + 1, LARGE)):
        log(f"measurements: {last:,} rows (INSERT ... SELECT generate_series)")
        _insert_measurements(tenant.pk, device_ids, first, last)
        for path, who, devices in lists.values():
            _check_page(path, tokens[who], devices)
        log(f"measurement lists at {last:,} rows: p95 per list, 1 connection")
        figures[size] = p95_in_rounds(targets, f"{last:,} rows")
    log("measurement list at 1,000,000 rows, administrator: row-level security on vs off")
    cost = p95_on_and_off(
        "Measurement list p95 at 1M rows, administrator: RLS on (reference: off)", targets["administrator, tenant"]
    )
    return [cost] + [
        scaling_row(f"Measurement list p95 at 1M rows, {name}", figures["1M"][name], figures["10k"][name], "at 10k")
        for name in lists
    ]
