"""The devices app's isolation checks (``tenants.isolation``): ties the models do not state.

Guardian's permission rows carry no tenant of their own: the group and the user or role
they join must be one tenant's. Payload rows live in the telemetry database and name
their device and tenant by id, so a foreign key cannot hold them to the registry; the
finder compares them set-based, in batches.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connections

from cot.db_routers import TELEMETRY_ALIAS
from devices.models import (
    Alarm,
    Device,
    DeviceGroupRolePermission,
    DeviceGroupUserPermission,
    Event,
    Measurement,
    Operation,
    OperationResult,
    PayloadPurge,
)
from tenants.isolation import Check, Finding, register, register_finder

#: (device, tenant) pairs compared with the registry per statement
PAIRS_PER_BATCH = 10_000
PAYLOAD_MODELS = (Measurement, Event, Alarm, OperationResult)


def register_checks() -> None:
    """Register the checks (called from ``DevicesConfig.ready``)."""
    users = DeviceGroupUserPermission._meta.db_table
    roles = DeviceGroupRolePermission._meta.db_table
    register(
        Check(
            f"{users}.user",
            users,
            f"SELECT grant_.id, device_group.tenant_id, member.tenant_id FROM {users} AS grant_ "  # noqa: S608
            "JOIN devices_devicegroup AS device_group ON device_group.id = grant_.content_object_id "
            "JOIN tenants_user AS member ON member.id = grant_.user_id "
            "WHERE member.tenant_id <> device_group.tenant_id",
        )
    )
    register(
        Check(
            f"{roles}.role",
            roles,
            f"SELECT grant_.id, device_group.tenant_id, role.tenant_id FROM {roles} AS grant_ "  # noqa: S608
            "JOIN devices_devicegroup AS device_group ON device_group.id = grant_.content_object_id "
            "JOIN tenants_role AS role ON role.group_id = grant_.group_id "
            "WHERE role.tenant_id <> device_group.tenant_id",
        )
    )
    purges = PayloadPurge._meta.db_table
    register(
        Check(
            f"{purges}.device_ids",
            purges,
            # A purge deletes payload by device id: every id must be one of the purge's tenant's devices.
            f"SELECT DISTINCT purge.id, purge.tenant_id, device.tenant_id FROM {purges} AS purge "  # noqa: S608
            "CROSS JOIN LATERAL unnest(purge.device_ids) AS listed (device_id) "
            "JOIN devices_device AS device ON device.id = listed.device_id "
            "WHERE device.tenant_id <> purge.tenant_id",
        )
    )
    register_finder("payload.device", payload_of_other_tenants_devices)
    register_finder("payload.operation", results_of_other_tenants_operations)


def payload_of_other_tenants_devices() -> Iterator[Finding]:
    """Payload rows whose device is another tenant's (or gone): one finding per table, device and tenant."""
    for model in PAYLOAD_MODELS:
        table = model._meta.db_table
        yield from _compare_with_registry(
            f"{table}.device",
            table,
            "device_id, tenant_id",
            f"""
            SELECT registered.tenant_id, pair.tenant_id, pair.first_row
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS pair (device_id, tenant_id, first_row)
            LEFT JOIN {Device._meta.db_table} AS registered ON registered.id = pair.device_id
            WHERE registered.tenant_id IS DISTINCT FROM pair.tenant_id
            """,  # noqa: S608 (the table name comes from the model)
        )


def results_of_other_tenants_operations() -> Iterator[Finding]:
    """Operation results whose operation is another tenant's or another device's (or gone)."""
    table = OperationResult._meta.db_table
    yield from _compare_with_registry(
        f"{table}.operation",
        table,
        "operation_id, device_id, tenant_id",
        f"""
        SELECT registered.tenant_id, pair.tenant_id, pair.first_row
        FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])
            AS pair (operation_id, device_id, tenant_id, first_row)
        LEFT JOIN {Operation._meta.db_table} AS registered ON registered.id = pair.operation_id
        WHERE registered.tenant_id IS DISTINCT FROM pair.tenant_id
           OR registered.device_id IS DISTINCT FROM pair.device_id
        """,  # noqa: S608 (the table name comes from the model)
    )


def _compare_with_registry(check: str, table: str, keys: str, compare: str) -> Iterator[Finding]:
    """Payload rows of ``table`` grouped by ``keys``, compared with the registry in batches.

    The telemetry database groups the rows (the first row id of each group names it); each
    batch of ``PAIRS_PER_BATCH`` groups goes to the registry as arrays, one per column, and
    ``compare`` returns ``(the registry's tenant or None, the rows' tenant, first row)``
    for the groups that do not match.
    """
    grouped = f"SELECT {keys}, min(id) FROM {table} GROUP BY {keys}"  # noqa: S608 (names from the models)
    with connections[TELEMETRY_ALIAS].chunked_cursor() as cursor:
        cursor.execute(grouped)
        while groups := cursor.fetchmany(PAIRS_PER_BATCH):
            with connections["default"].cursor() as registry:
                registry.execute(compare, [list(column) for column in zip(*groups, strict=True)])
                mismatches = registry.fetchall()
            for registered_tenant, tenant, first_row in mismatches:
                yield Finding(check, table, str(first_row), tenant, registered_tenant)
