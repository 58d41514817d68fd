"""Benchmark 3: ``GET /api/v1/devices/`` p95 latency at 1,000 and at 100,000 devices.

An administrator (all devices) and a Standard user holding rights on 3 of 50 groups
(about 5 % of the devices) each list the first page with a read-scoped API token. The
tenant is measured at 1,000 devices, grown set-based to 100,000, and measured again:
the p95 at 100,000 may be at most 1.5 times the p95 at 1,000, and under 50 ms.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.core import HTTP_PORT, VAR, Row, in_rounds, load, log, warm_up
from bench.data import bench_tenant, grant_view_change, groups_and_types, insert_devices, user_with_token, write_lines
from tenants.models import Role

ENDPOINT = "/api/v1/devices/"
SMALL, LARGE = 1_000, 100_000
GROUPS, GRANTED, TYPES = 50, 3, 5
MAX_RATIO, MAX_P95_MS = 1.5, 50.0


def _first_page(token: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{HTTP_PORT}{ENDPOINT}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        page: dict[str, object] = json.loads(response.read())
    return page


def _check_scope(token: str, allowed_groups: set[int] | None) -> None:
    """A full page, and for the Standard user only devices of the groups granted to them."""
    results = _first_page(token)["results"]
    assert isinstance(results, list)
    if len(results) != 50:
        raise RuntimeError(f"Expected a full first page, got {len(results)} devices.")
    if allowed_groups is not None and any(row["group"] not in allowed_groups for row in results):
        raise RuntimeError("The Standard user sees devices outside the groups granted to them.")


def _p95_in_rounds(tokens: dict[str, str], devices: int) -> dict[str, list[float]]:
    """Each caller's p95 over ``ROUNDS`` rounds, from one connection (one request at a time)."""
    files = {who: write_lines(VAR / f"token-{who.replace(' ', '-')}.txt", [token]) for who, token in tokens.items()}
    for tokens_file in files.values():
        warm_up(ENDPOINT, tokens=tokens_file, connections=1)

    def p95(tokens_file: Path) -> Callable[[], float]:
        return lambda: load(ENDPOINT, tokens=tokens_file, connections=1).p95_ms

    log(f"device list at {devices:,} devices: p95 per caller, 1 connection")
    return in_rounds({f"{who} p95 ms at {devices:,}": p95(tokens_file) for who, tokens_file in files.items()})


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

    insert_devices(tenant, group_ids, type_ids, 1, SMALL)
    _check_scope(admin_token, None)
    _check_scope(standard_token, set(granted))
    small = _p95_in_rounds(tokens, SMALL)

    log(f"growing the tenant to {LARGE:,} devices (INSERT ... SELECT generate_series)")
    insert_devices(tenant, group_ids, type_ids, SMALL + 1, LARGE)
    _check_scope(admin_token, None)
    _check_scope(standard_token, set(granted))
    large = _p95_in_rounds(tokens, LARGE)

    rows = []
    for who in tokens:
        at_small, at_large = min(small[f"{who} p95 ms at {SMALL:,}"]), min(large[f"{who} p95 ms at {LARGE:,}"])
        rows.append(
            Row(
                f"Device list p95 at 100k devices, {who}"
                + (f" ({GRANTED} of {GROUPS} groups)" if who != "administrator" else ""),
                at_large,
                at_small,
                "ms",
                f"<= {MAX_RATIO} x at 1k, < {MAX_P95_MS:.0f} ms",
                at_large <= MAX_RATIO * at_small and at_large < MAX_P95_MS,
                "at 1k devices",
                {
                    **{k: v for k, v in small.items() if k.startswith(who)},
                    **{k: v for k, v in large.items() if k.startswith(who)},
                },
            )
        )
    return rows
