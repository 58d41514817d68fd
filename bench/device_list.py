"""Benchmark 3: ``GET /api/v1/devices/`` p95 latency at 1,000 and at 100,000 devices.

An administrator (all devices) and a Standard user holding rights on 3 of 50 groups
(about 5 % of the devices) each list the first page with a read-scoped API token. The
tenant is measured at 1,000 devices, grown set-based to 100,000, and measured again:
the p95 at 100,000 may be at most 1.5 times the p95 at 1,000, and under 50 ms.
"""

from __future__ import annotations

from bench.core import VAR, Row, get_json, log, p95_in_rounds, scaling_row
from bench.data import bench_tenant, grant_view_change, groups_and_types, insert_devices, user_with_token, write_lines
from bench.rls import p95_on_and_off
from tenants.models import Role

ENDPOINT = "/api/v1/devices/"
SMALL, LARGE = 1_000, 100_000
GROUPS, GRANTED, TYPES = 50, 3, 5


def _check_scope(token: str, allowed_groups: set[int] | None) -> None:
    """A full page, and for the Standard user only devices of the groups granted to them."""
    results = get_json(ENDPOINT, token)["results"]
    assert isinstance(results, list)
    if len(results) != 50:
        raise RuntimeError(f"Expected a full first page, got {len(results)} devices.")
    if allowed_groups is not None and any(row["group"] not in allowed_groups for row in results):
        raise RuntimeError("The Standard user sees devices outside the groups granted to them.")


def device_list() -> list[Row]:
    """Both callers' p95 at 1,000 devices, then at 100,000 devices."""
    tenant = bench_tenant("bench-list")
    group_ids, type_ids = groups_and_types(tenant, GROUPS, TYPES)
    _, admin_token = user_with_token(tenant, Role.Kind.ADMINISTRATOR)
    standard, standard_token = user_with_token(tenant, Role.Kind.STANDARD)
    # Three groups spread over the list, not the first three created.
    granted = group_ids[5 :: GROUPS // GRANTED][:GRANTED]
    grant_view_change(granted, standard)
    tokens = {"administrator": admin_token, "standard user": standard_token}
    targets = {
        who: (ENDPOINT, write_lines(VAR / f"token-{who.replace(' ', '-')}.txt", [token]))
        for who, token in tokens.items()
    }

    insert_devices(tenant, group_ids, type_ids, 1, SMALL)
    _check_scope(admin_token, None)
    _check_scope(standard_token, set(granted))
    log(f"device list at {SMALL:,} devices: p95 per caller, 1 connection")
    small = p95_in_rounds(targets, f"{SMALL:,}")

    log(f"growing the tenant to {LARGE:,} devices (INSERT ... SELECT generate_series)")
    insert_devices(tenant, group_ids, type_ids, SMALL + 1, LARGE)
    _check_scope(admin_token, None)
    _check_scope(standard_token, set(granted))
    log(f"device list at {LARGE:,} devices: p95 per caller, 1 connection")
    large = p95_in_rounds(targets, f"{LARGE:,}")

    log(f"device list at {LARGE:,} devices, administrator: row-level security on vs off")
    cost = p95_on_and_off(
        "Device list p95 at 100k devices, administrator: RLS on (reference: off)", targets["administrator"]
    )
    return [cost] + [
        scaling_row(
            f"Device list p95 at 100k devices, {who}"
            + (f" ({GRANTED} of {GROUPS} groups)" if who == "standard user" else ""),
            large[who],
            small[who],
            "at 1k devices",
        )
        for who in targets
    ]
