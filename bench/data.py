"""Benchmark data, made through the real services, and devices in bulk through SQL.

Tenants, users, tokens, groups, rights and the devices that post data go through the
same ``do_*`` services as production. The many devices of the list benchmark are
inserted set-based (``INSERT … SELECT generate_series``): a per-row ORM loop would take
minutes for 100,000 devices and measure nothing of interest.
"""

from __future__ import annotations

from pathlib import Path

from django.db import connection, connections

from cot.database.roles import as_owner
from devices.models import Device, DeviceGroup
from devices.services import do_create_device_group, do_set_device_group_rights
from devices.services.registration import device_register, do_accept_registrations, do_create_registration
from devices.services.registry import do_create_device_type
from tenants.models import ApiToken, Tenant, User
from tenants.services import (
    builtin_role,
    do_create_api_token,
    do_create_tenant,
    do_create_user,
    do_update_tenant_policy,
)

# Far above anything the load reaches, so limits never refuse a request, while the
# limiter itself (one Redis round trip per request) still runs as in production.
UNLIMITED = {"second": "100000000/s", "minute": "6000000000/min"}
BENCH_RATE_LIMITS = dict.fromkeys(("device", "tenant_devices", "token", "tenant_api"), UNLIMITED)


def bench_tenant(slug: str) -> Tenant:
    """A customer tenant whose rate limits the load never reaches."""
    tenant = do_create_tenant(slug=slug, name=f"Bench {slug}")
    return do_update_tenant_policy(tenant, {"rate_limits": BENCH_RATE_LIMITS})


def registered_devices(tenant: Tenant, count: int) -> list[str]:
    """``count`` active devices through the real registration flow; their credentials."""
    credentials = []
    for n in range(count):
        external_id = f"INGEST-{n:04d}"
        issued = do_create_registration(external_id=external_id, actor=None, tenant=tenant)
        do_accept_registrations([issued.registration.pk], actor=None)
        answer = device_register(tenant_slug=tenant.slug, external_id=external_id, registration_token=issued.token)
        assert answer.credential is not None
        credentials.append(answer.credential)
    return credentials


def user_with_token(tenant: Tenant, kind: str) -> tuple[User, str]:
    """A user of a built-in role and a read-scoped API token of theirs."""
    user = do_create_user(
        email=f"{kind}@{tenant.slug}.bench", role=builtin_role(tenant, kind), actor=None, tenant=tenant
    )
    _, secret = do_create_api_token(user=user, name="bench", scope=ApiToken.Scope.READ, actor=None)
    return user, secret


def groups_and_types(tenant: Tenant, groups: int, types: int) -> tuple[list[int], list[int]]:
    """Device groups and device types of ``tenant``, through the services; their ids."""
    group_ids = [do_create_device_group(name=f"Site {n:02d}", actor=None, tenant=tenant).pk for n in range(groups)]
    type_ids = [
        do_create_device_type(manufacturer="Bench", model=f"Sensor {n}", actor=None, tenant=tenant).pk
        for n in range(types)
    ]
    return group_ids, type_ids


def grant_view_change(group_ids: list[int], user: User) -> None:
    """Give ``user`` the Standard rights (view, change) on these groups, as an administrator would."""
    for group in DeviceGroup.objects.filter(pk__in=group_ids):
        do_set_device_group_rights(group, rights=["view", "change"], user=user, actor=None)


# About 1 in 10 devices has no group (only administrators see it) and 1 in 5 no type;
# groups and types are drawn at random (seeded), so rows of one group are spread over
# the whole id range as registrations over time spread them.
_INSERT_DEVICES = """
INSERT INTO devices_device (
    tenant_id, external_id, name, status, firmware_version, last_seen_at, attributes,
    credential_prefix, certificate_fingerprint, registered_at, group_id, type_id
)
SELECT %(tenant)s, 'BENCH-' || lpad(n::text, 7, '0'), 'Bench device ' || n, %(active)s,
       '1.' || (n %% 7) || '.0',
       CASE WHEN random() < 0.9 THEN now() - random() * interval '20 minutes' END,
       jsonb_build_object('site', 'plant-' || (n %% 13)),
       '', '', now() - interval '30 days' + n * interval '1 second',
       CASE WHEN random() < 0.9 THEN (%(groups)s::bigint[])[1 + floor(random() * %(group_count)s)::int] END,
       CASE WHEN random() < 0.8 THEN (%(types)s::bigint[])[1 + floor(random() * %(type_count)s)::int] END
FROM generate_series(%(first)s, %(last)s) AS n
"""


def insert_devices(tenant: Tenant, group_ids: list[int], type_ids: list[int], first: int, last: int) -> int:
    """Insert devices numbered ``first``..``last`` in one statement, then settle the table.

    VACUUM ANALYZE and a checkpoint leave it as a long-running system has it (statistics,
    visibility map, no pending writes), so no autovacuum starts in the middle of a measurement.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [first / (last + 1)])
        cursor.execute(
            _INSERT_DEVICES,
            {
                "tenant": tenant.pk,
                "active": Device.Status.ACTIVE,
                "groups": group_ids,
                "group_count": len(group_ids),
                "types": type_ids,
                "type_count": len(type_ids),
                "first": first,
                "last": last,
            },
        )
        inserted = cursor.rowcount
    maintain("default", "VACUUM ANALYZE devices_device", "CHECKPOINT")
    return inserted


def maintain(alias: str, *statements: str) -> None:
    """Table maintenance the application's role may not do (VACUUM, TRUNCATE, CHECKPOINT), as the owner.

    scripts/bench.sh lets its owner role run CHECKPOINT (``pg_checkpoint``).
    """
    with as_owner(alias), connections[alias].cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def write_lines(path: Path, lines: list[str]) -> Path:
    """A file of one value per line (tokens for wrk)."""
    path.write_text("".join(f"{line}\n" for line in lines))
    return path
