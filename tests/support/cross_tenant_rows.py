"""Rows that tie one tenant to another, written with raw SQL behind every check of the application.

Each case takes ``(acme, globex, cursor)``: ``cursor(alias)`` is a context manager giving a
cursor to write with (as the owner, or as a superuser with every trigger off), and returns
``(check, table, row)``: the isolation check that must find the row and how it names it.
The application's rows the cases start from are created through the factories, committed
(the tests are ``transaction=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

import audit
from devices.models import Measurement, Operation, OperationResult
from tenants.models import Role
from tests.factories import make_device, make_group, make_user

Writer = Callable[[str], Any]
Case = Callable[[Any, Any, Writer], tuple[str, str, str]]


def device_in_other_tenants_group(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    device, _ = make_device(acme, make_group(acme))
    other = make_group(globex)
    with cursor("default") as raw:
        raw.execute("UPDATE devices_device SET group_id = %s WHERE id = %s", [other.pk, device.pk])
    return "devices_device.group", "devices_device", str(device.pk)


def right_on_other_tenants_group(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    user = make_user(acme, Role.Kind.STANDARD)
    row = _view_right(cursor, "devices_devicegroupuserpermission", "user_id", user.pk, make_group(globex).pk)
    return "devices_devicegroupuserpermission.user", "devices_devicegroupuserpermission", row


def role_right_on_other_tenants_group(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    role = Role.objects.get(tenant=acme, kind=Role.Kind.STANDARD)
    row = _view_right(cursor, "devices_devicegrouprolepermission", "group_id", role.group_id, make_group(globex).pk)
    return "devices_devicegrouprolepermission.role", "devices_devicegrouprolepermission", row


def _view_right(cursor: Writer, table: str, holder_column: str, holder: int, group: int) -> str:
    """A guardian row giving ``holder`` view on ``group``, written raw; its id."""
    with cursor("default") as raw:
        raw.execute(
            f"INSERT INTO {table} ({holder_column}, permission_id, content_object_id) "
            "SELECT %s, id, %s FROM auth_permission WHERE codename = 'view_devicegroup' RETURNING id",
            [holder, group],
        )
        (row,) = raw.fetchone()
    return str(row)


def member_of_other_tenants_role(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    user = make_user(acme, Role.Kind.STANDARD)
    other_role = Role.objects.get(tenant=globex, kind=Role.Kind.ADMINISTRATOR)
    with cursor("default") as raw:
        raw.execute(
            "INSERT INTO tenants_user_groups (user_id, group_id) VALUES (%s, %s) RETURNING id",
            [user.pk, other_role.group_id],
        )
        (row,) = raw.fetchone()
    return "tenants_user_groups.role", "tenants_user_groups", str(row)


def user_with_other_tenants_role(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    user = make_user(acme, Role.Kind.STANDARD)
    other_role = Role.objects.get(tenant=globex, kind=Role.Kind.ADMINISTRATOR)
    with cursor("default") as raw:
        raw.execute("UPDATE tenants_user SET role_id = %s WHERE id = %s", [other_role.pk, user.pk])
    return "tenants_user.role", "tenants_user", str(user.pk)


def other_tenants_user_as_actor(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    stranger = make_user(globex, Role.Kind.STANDARD)
    entry = audit.record("test.event", tenant=acme)
    with cursor("default") as raw:
        raw.execute("UPDATE audit_auditentry SET actor_id = %s WHERE id = %s", [stranger.pk, entry.pk])
    return "audit_auditentry.actor", "audit_auditentry", str(entry.pk)


def measurement_of_other_tenants_device(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    device, _ = make_device(globex, make_group(globex))
    with cursor("telemetry") as raw:
        raw.execute(
            f"INSERT INTO {Measurement._meta.db_table} (tenant_id, device_id, time, type, series, value, unit) "
            "VALUES (%s, %s, %s, 'temperature', 'T', 21.5, 'C') RETURNING id",
            [acme.pk, device.pk, timezone.now()],
        )
        (row,) = raw.fetchone()
    return "devices_measurement.device", "devices_measurement", str(row)


def purge_of_other_tenants_device(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    theirs, _ = make_device(globex, make_group(globex))
    with cursor("default") as raw:
        raw.execute(
            "INSERT INTO devices_payloadpurge (tenant_id, device_ids, status, total, deleted, created_at) "
            "VALUES (%s, %s, 'queued', 0, 0, now()) RETURNING id",
            [acme.pk, [theirs.pk]],
        )
        (row,) = raw.fetchone()
    return "devices_payloadpurge.device_ids", "devices_payloadpurge", str(row)


def result_of_other_tenants_operation(acme: Any, globex: Any, cursor: Writer) -> tuple[str, str, str]:
    ours, _ = make_device(acme, make_group(acme))
    theirs, _ = make_device(globex, make_group(globex))
    operation = Operation.objects.create(tenant=globex, device=theirs, kind="restart")
    with cursor("telemetry") as raw:
        raw.execute(
            f"INSERT INTO {OperationResult._meta.db_table} (tenant_id, device_id, operation_id, time, status, message) "
            "VALUES (%s, %s, %s, %s, 'successful', '') RETURNING id",
            [acme.pk, ours.pk, operation.pk, timezone.now()],
        )
        (row,) = raw.fetchone()
    return "devices_operationresult.operation", "devices_operationresult", str(row)


#: the cases the database itself refuses (composite keys and constraint triggers)
REFUSED_BY_CONSTRAINTS: dict[str, Case] = {
    "device in another tenant's group": device_in_other_tenants_group,
    "user right on another tenant's group": right_on_other_tenants_group,
    "role right on another tenant's group": role_right_on_other_tenants_group,
    "member of another tenant's role": member_of_other_tenants_role,
    "user with another tenant's role": user_with_other_tenants_role,
}
#: every case; the ones below only the isolation check finds (platform staff may be actors;
#: payload rows live in another database than their devices; purges list device ids in an array)
ALL: dict[str, Case] = {
    **REFUSED_BY_CONSTRAINTS,
    "another tenant's user as audit actor": other_tenants_user_as_actor,
    "measurement of another tenant's device": measurement_of_other_tenants_device,
    "purge of another tenant's device": purge_of_other_tenants_device,
    "result of another tenant's operation": result_of_other_tenants_operation,
}
