"""Access rules of the devices app's models, registered with ``tenants.access``.

Rights granted on a device group reach everything below it: its devices, their
operations and (through the device ids) their payload rows. Administrators (and support
engineers inside a grant) see the tenant's whole fleet; everyone else sees the groups
granted to their user or role, as django-guardian's object permission rows say.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Q, QuerySet

from devices.models import Device, DeviceGroup, DeviceGroupRolePermission, DeviceGroupUserPermission
from tenants.access import (
    Caller,
    Rule,
    admin_only,
    pinned,
    register,
    registration,
    secret_keepers,
    tenant_readable,
)
from tenants.grant_scopes import register_device_groups
from tenants.models import Action


def device_groups_q(caller: Caller, action: str, group_field: str = "pk") -> Q:
    """Q matching rows whose device group (``group_field``) grants the caller ``action``.

    Device groups pass ``"pk"``; devices ``"group_id"`` and operations
    ``"device__group_id"``, so rights granted on a group reach its devices. A permission
    row only counts when its group, its user or role and the caller share one tenant.
    Administrators reach every group; a support engineer under a grant limited to some
    groups (``Caller.device_group_limit``) those.

    The granted groups are uncorrelated subqueries (``group IN (granted groups)``), which
    PostgreSQL reads once and hashes: counting a large fleet then costs a hash probe per
    device instead of two correlated lookups per device.
    """
    if caller.acts_as_admin:
        limit = caller.device_group_limit
        return Q() if limit is None else Q(**{f"{group_field}__in": limit})
    if action not in caller.rights:
        return Q(pk__in=[])
    codename = f"{action}_devicegroup"
    by_user = DeviceGroupUserPermission.objects.filter(
        content_object__tenant=caller.tenant.pk,
        user=caller.user.pk,
        user__tenant=caller.tenant.pk,
        permission__codename=codename,
    ).values("content_object")
    by_role = DeviceGroupRolePermission.objects.filter(
        content_object__tenant=caller.tenant.pk,
        group=caller.role.group_id,
        group__cot_role__tenant=caller.tenant.pk,
        permission__codename=codename,
    ).values("content_object")
    return Q(**{f"{group_field}__in": by_user}) | Q(**{f"{group_field}__in": by_role})


def reaches_every_group(caller: Caller) -> bool:
    """Administrators, and support inside a grant that is not limited to some device groups."""
    return caller.acts_as_admin and caller.device_group_limit is None


def in_granted_groups(group_field: str) -> Rule:
    """Rule for rows reached through a device group: administrators all, others by grant."""

    def rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
        qs = pinned(qs, caller)
        if action == Action.ADD:
            return qs if reaches_every_group(caller) else qs.none()
        return qs.filter(device_groups_q(caller, action, group_field))

    rule.__doc__ = (
        f"Administrators all rows (support under a grant limited to device groups: theirs); others those whose "
        f"group (``{group_field}``) grants the action."
    )
    return rule


group_rule = in_granted_groups("pk")
device_rule = in_granted_groups("group_id")
operation_rule = in_granted_groups("device__group_id")


def payload_purge_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators see every purge job of the tenant, others those they started; the job alone writes.

    A support grant limited to device groups sees the jobs whose every device is in those
    groups: a job's device ids are its devices' identities.
    """
    if action != Action.VIEW:
        return qs.none()
    qs = pinned(qs, caller)
    if not caller.acts_as_admin:
        return qs.filter(created_by=caller.user.pk)
    limit = caller.device_group_limit
    if limit is None:
        return qs
    in_limit = Device.objects.filter(tenant=caller.tenant.pk, group__in=limit).order_by().values("pk")
    return qs.filter(device_ids__contained_by=ArraySubquery(in_limit))


def payload_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators every row of the tenant; others (and limited support grants) the rows of devices they may view.

    Payload rows live in the telemetry database and follow their device's rights. The
    stores cannot be joined, so a constrained caller's reachable device ids are read from
    the registry first (so are those of a support grant limited to some groups);
    administrators need only the tenant pin.
    """
    qs = pinned(qs, caller)
    if caller.acts_as_admin and caller.device_group_limit is None:
        return qs
    device_rules = registration("devices.Device")
    if device_rules is None:
        return qs.none()
    device_action = Action.VIEW if action == Action.VIEW else Action.CHANGE
    devices = device_rules.rows(Device.objects.all(), caller, device_action)
    return qs.filter(device_id__in=list(devices.values_list("pk", flat=True)))


def registration_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators (and support inside a grant) every registration; a grant limited to groups those of its groups."""
    qs = admin_only(qs, caller, action)
    limit = caller.device_group_limit
    return qs if limit is None else qs.filter(group__in=limit)


def operators_of_devices(caller: Caller) -> bool:
    """Administrators, and roles with ``change`` (checked again on the device by the service)."""
    return caller.acts_as_admin or Action.CHANGE in caller.rights


def visible_group_choices(user: Any) -> list[tuple[int, str]]:
    """``(id, name)`` of the device groups ``user`` sees: what a support grant may be limited to."""
    rows = DeviceGroup.objects.restrict(user, Action.VIEW).order_by("name", "pk").values_list("pk", "name")
    return [(pk, name) for pk, name in rows]


def register_rules() -> None:
    """The devices app's models (called from ``DevicesConfig.ready``)."""
    register_device_groups(visible_group_choices)
    register("devices.DeviceGroup", group_rule, add=reaches_every_group)
    register("devices.Device", device_rule, add=reaches_every_group)
    register("devices.Operation", operation_rule, add=operators_of_devices)
    register("devices.DeviceType", tenant_readable, add=reaches_every_group)
    # Registrations hand out device credentials: support may look (a read grant is for
    # looking), only the tenant's own administrators create or change them.
    register("devices.DeviceRegistration", registration_rule, add=secret_keepers, support_never_writes=True)
    register("devices.PayloadPurge", payload_purge_rule)
    for label in ("devices.Measurement", "devices.Event", "devices.Alarm", "devices.OperationResult"):
        register(label, payload_rule)
