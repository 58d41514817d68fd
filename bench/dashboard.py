"""Benchmark 9: the cockpit's home page (``GET /cockpit/``) p95 latency at 1,000 and 100,000 devices.

An administrator (the whole tenant) and a Standard user holding rights on 3 of 50 groups
(about 5 % of the devices) each load the dashboard with a signed-in, two-factor verified
session. The bench server runs with the per-caller cache off (``COT_DASHBOARD_CACHE_SECONDS=0``,
``bench.core.gunicorn``), so every request computes every panel: what the first caller
after a quiet spell waits for. Payload grows with the fleet: 2 % of the devices have an
open alarm and every device sent 10 values in the last 24 hours (1,000,000 at 100,000
devices). Target: p95 under 200 ms at 100,000 devices (issue 13). The lazy panels the page
asks for once loaded (silent devices, firmware versions, values per hour, the map) are
measured on their own at 100,000 devices; the slowest gets a row, with a target of 1 s.
"""

from __future__ import annotations

import urllib.request
from typing import Any

from django.db import connections
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from bench.core import HTTP_PORT, VAR, Row, log, p95_in_rounds
from bench.data import bench_tenant, grant_view_change, groups_and_types, insert_devices, maintain, write_lines
from cot.db_routers import TELEMETRY_ALIAS
from devices.models import Device
from devices.services.registration import do_create_registration
from tenants.models import Role, Tenant, User
from tenants.services import builtin_role, do_create_user

ENDPOINT = "/cockpit/"
SMALL, LARGE = 1_000, 100_000
GROUPS, GRANTED, TYPES = 50, 3, 5
MAX_MS, MAX_LAZY_MS = 200.0, 1000.0
LAZY_PANELS = ("silent", "firmware-versions", "ingest", "map")
VALUES_PER_DEVICE = 10  # in the last 24 hours

# The tenant's devices after the first ``skip`` (by id); every 50th of them gets an open
# alarm, and every one VALUES_PER_DEVICE values spread over the last day.
_DEVICES_AFTER = """
WITH fleet AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM devices_device
    WHERE tenant_id = %(tenant)s ORDER BY id OFFSET %(skip)s
)
SELECT array_agg(id ORDER BY n) FROM fleet
"""
_INSERT_ALARMS = """
INSERT INTO devices_alarm (tenant_id, device_id, type, severity, status, text, count, first_time, last_time, updated_at)
SELECT %(tenant)s, d, 'high_temperature', (ARRAY['CRITICAL','MAJOR','MINOR','WARNING'])[1 + (d %% 4)],
       CASE WHEN d %% 3 = 0 THEN 'ACKNOWLEDGED' ELSE 'ACTIVE' END, 'bench', 1, now(), now(), now()
FROM unnest(%(devices)s::bigint[]) WITH ORDINALITY AS t(d, n) WHERE n %% 50 = 0
"""
_INSERT_MEASUREMENTS = """
INSERT INTO devices_measurement (tenant_id, device_id, time, type, series, value, unit)
SELECT %(tenant)s, d, now() - (k * 2.4 + random() * 2.4) * interval '1 hour', 'c8y_Temperature', 'T', 20 + k, 'C'
FROM unnest(%(devices)s::bigint[]) AS d, generate_series(0, %(per_device)s - 1) AS k
"""


def _add_payload(tenant: Tenant, skip: int) -> None:
    """Alarms and a day of values for the tenant's devices after the first ``skip``, set-based."""
    with connections["default"].cursor() as cursor:
        cursor.execute(_DEVICES_AFTER, {"tenant": tenant.pk, "skip": skip})
        (devices,) = cursor.fetchone()
    with connections[TELEMETRY_ALIAS].cursor() as cursor:
        arguments = {"tenant": tenant.pk, "devices": devices, "per_device": VALUES_PER_DEVICE}
        cursor.execute(_INSERT_ALARMS, arguments)
        cursor.execute(_INSERT_MEASUREMENTS, arguments)
    maintain(TELEMETRY_ALIAS, "VACUUM ANALYZE devices_alarm", "VACUUM ANALYZE devices_measurement", "CHECKPOINT")


def _signed_in(user: User) -> str:
    """A session cookie of ``user``, past the two-factor step (as after the cockpit's login)."""
    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return f"sessionid={client.cookies['sessionid'].value}"


def _check(cookie: str, devices: int) -> None:
    """The page answers 200 (not the login) with the fleet panel counting ``devices``."""
    request = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{ENDPOINT}", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
        page = response.read().decode()
        if response.status != 200 or response.url.rstrip("/") != request.full_url.rstrip("/"):
            raise RuntimeError(f"{ENDPOINT}: answered {response.status} at {response.url}, not the dashboard.")
    if f'data-figure="devices">{devices}<' not in page:
        raise RuntimeError(f"{ENDPOINT}: the fleet panel does not count {devices} devices.")


def _visible(user: Any) -> int:
    return Device.objects.restrict(user, "view").count()


def dashboard() -> list[Row]:
    """Both callers' p95 at 1,000 devices, then at 100,000 devices."""
    tenant = bench_tenant("bench-dashboard")
    group_ids, type_ids = groups_and_types(tenant, GROUPS, TYPES)
    admin = do_create_user(
        email="dashboard-admin@bench.test",
        role=builtin_role(tenant, Role.Kind.ADMINISTRATOR),
        actor=None,
        tenant=tenant,
    )
    standard = do_create_user(
        email="dashboard-standard@bench.test", role=builtin_role(tenant, Role.Kind.STANDARD), actor=None, tenant=tenant
    )
    grant_view_change(group_ids[5 :: GROUPS // GRANTED][:GRANTED], standard)
    for n in range(10):
        do_create_registration(external_id=f"WAITING-{n}", actor=admin)
    callers = {"administrator": admin, "standard user": standard}
    cookies = {who: _signed_in(user) for who, user in callers.items()}
    targets = {
        who: (ENDPOINT, write_lines(VAR / f"cookie-dashboard-{who.replace(' ', '-')}.txt", [f"cookie:{cookie}"]))
        for who, cookie in cookies.items()
    }

    rows: list[Row] = []
    figures: dict[str, dict[str, list[float]]] = {}
    for first, last in ((1, SMALL), (SMALL + 1, LARGE)):
        log(f"dashboard: {last:,} devices with alarms and a day of values (INSERT ... SELECT)")
        insert_devices(tenant, group_ids, type_ids, first, last)
        _add_payload(tenant, first - 1)
        for who, user in callers.items():
            _check(cookies[who], _visible(user))
        log(f"dashboard at {last:,} devices: p95 per caller, 1 connection, nothing cached")
        figures[f"{last:,}"] = p95_in_rounds(targets, f"{last:,}")
    for who in callers:
        at_large, at_small = min(figures[f"{LARGE:,}"][who]), min(figures[f"{SMALL:,}"][who])
        scope = f" ({GRANTED} of {GROUPS} groups)" if who == "standard user" else ""
        rows.append(
            Row(
                f"Dashboard p95 at 100k devices, {who}{scope}",
                at_large,
                at_small,
                "ms",
                f"< {MAX_MS:.0f} ms",
                at_large < MAX_MS,
                "at 1k devices",
                {"p95 ms": figures[f"{LARGE:,}"][who], "p95 ms at 1k devices": figures[f"{SMALL:,}"][who]},
            )
        )
    log(f"the lazy panels at {LARGE:,} devices: p95 per caller and panel, 1 connection, nothing cached")
    lazy = p95_in_rounds(
        {
            f"{who} {key}": (f"{ENDPOINT}dashboard/panels/{key}/", target[1])
            for who, target in targets.items()
            for key in LAZY_PANELS
        },
        f"{LARGE:,}",
    )
    for who in callers:
        slowest = max(LAZY_PANELS, key=lambda key: min(lazy[f"{who} {key}"]))
        measured = min(lazy[f"{who} {slowest}"])
        rows.append(
            Row(
                f"Slowest lazy dashboard panel ({slowest}) p95 at 100k devices, {who}",
                measured,
                min(figures[f"{LARGE:,}"][who]),
                "ms",
                f"< {MAX_LAZY_MS:.0f} ms",
                measured < MAX_LAZY_MS,
                "the page itself",
                {f"p95 ms {key}": lazy[f"{who} {key}"] for key in LAZY_PANELS},
            )
        )
    return rows
