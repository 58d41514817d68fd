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


def payload_of_other_tenants_devices(limit: int) -> Iterator[Finding]:
    """Payload rows whose device is another tenant's (or gone): one finding per table, device and tenant.

    Each payload table is grouped by (device, tenant) in the telemetry database (the first
    row id of each pair names it), and the pairs are compared with the registry's devices
    in batches of ``PAIRS_PER_BATCH`` with one ``unnest`` join each.
    """
    found = 0
    for model in PAYLOAD_MODELS:
        table = model._meta.db_table
        with connections[TELEMETRY_ALIAS].chunked_cursor() as cursor:
            cursor.execute(
                f"SELECT device_id, tenant_id, min(id) FROM {table} GROUP BY device_id, tenant_id"  # noqa: S608
            )
            while pairs := cursor.fetchmany(PAIRS_PER_BATCH):
                for devices_tenant, tenant, first_row in _not_the_devices_tenant(pairs):
                    yield Finding(f"{table}.device", table, str(first_row), tenant, devices_tenant)
                    found += 1
                    if found >= limit:
                        return


def results_of_other_tenants_operations(limit: int) -> Iterator[Finding]:
    """Operation results whose operation is another tenant's or another device's (or gone), by batches."""
    table = OperationResult._meta.db_table
    with connections[TELEMETRY_ALIAS].chunked_cursor() as cursor:
        cursor.execute(f"SELECT operation_id, device_id, tenant_id, min(id) FROM {table} GROUP BY 1, 2, 3")  # noqa: S608
        found = 0
        while rows := cursor.fetchmany(PAIRS_PER_BATCH):
            operations, devices, tenants, first_rows = (list(column) for column in zip(*rows, strict=True))
            with connections["default"].cursor() as registry:
                registry.execute(
                    f"""
                    SELECT operation.tenant_id, result.tenant_id, result.first_row
                    FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])
                        AS result (operation_id, device_id, tenant_id, first_row)
                    LEFT JOIN {Operation._meta.db_table} AS operation ON operation.id = result.operation_id
                    WHERE operation.tenant_id IS DISTINCT FROM result.tenant_id
                       OR operation.device_id IS DISTINCT FROM result.device_id
                    ORDER BY result.first_row
                    """,  # noqa: S608 (the table name comes from the model)
                    [operations, devices, tenants, first_rows],
                )
                for operations_tenant, tenant, first_row in registry.fetchall():
                    yield Finding(f"{table}.operation", table, str(first_row), tenant, operations_tenant)
                    found += 1
                    if found >= limit:
                        return


def _not_the_devices_tenant(pairs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The pairs whose device is another tenant's or missing; each as (device's tenant or None, tenant, row)."""
    devices, tenants, rows = (list(column) for column in zip(*pairs, strict=True))
    with connections["default"].cursor() as cursor:
        cursor.execute(
            f"""
            SELECT device.tenant_id, pair.tenant_id, pair.first_row
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS pair (device_id, tenant_id, first_row)
            LEFT JOIN {Device._meta.db_table} AS device ON device.id = pair.device_id
            WHERE device.tenant_id IS DISTINCT FROM pair.tenant_id
            ORDER BY pair.first_row
            """,  # noqa: S608 (the table name comes from the model)
            [devices, tenants, rows],
        )
        return cursor.fetchall()
