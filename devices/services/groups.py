"""Writes to device groups and the rights granted on them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from devices.models import DeviceGroup, DeviceGroupRolePermission, DeviceGroupUserPermission
from tenants.access import caller_for
from tenants.models import DEVICE_GROUP_RIGHTS, Action, Role, Tenant, User
from tenants.services import access_by_id, require_add, tenant_for_write


@transaction.atomic
def do_create_device_group(
    *, name: str, description: str = "", actor: User | None, tenant: Tenant | None = None
) -> DeviceGroup:
    """Create a device group in the actor's tenant."""
    require_add(actor, DeviceGroup)
    tenant = tenant_for_write(actor, tenant)
    if DeviceGroup.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"A device group named '{name}' already exists."})
    group = DeviceGroup(tenant=tenant, name=name, description=description)
    group.full_clean()
    group.save()
    return group


@transaction.atomic
def do_update_device_group(group: DeviceGroup, changes: dict[str, Any], *, actor: User | None) -> DeviceGroup:
    """Rename or describe a group (auditlog records the field changes)."""
    if actor is not None:
        group = access_by_id(actor, DeviceGroup, group.pk, Action.CHANGE)
    name = changes.get("name")
    if name and DeviceGroup.objects.filter(tenant=group.tenant_id, name=name).exclude(pk=group.pk).exists():
        raise ValidationError({"name": f"A device group named '{name}' already exists."})
    for key, value in changes.items():
        setattr(group, key, value)
    group.full_clean()
    group.save()
    return group


@transaction.atomic
def do_delete_device_group(group: DeviceGroup, *, actor: User | None) -> None:
    """Delete a group and the rights granted on it."""
    if actor is not None:
        group = access_by_id(actor, DeviceGroup, group.pk, Action.DELETE)
    group.delete()


@transaction.atomic
def do_set_device_group_rights(
    group: DeviceGroup, *, rights: list[str], user: User | None = None, role: Role | None = None, actor: User | None
) -> list[str]:
    """Replace the rights that one user or one role holds on ``group``.

    All rows change in one transaction: nobody ever holds a half-applied set. Only
    administrators manage rights (they reach the group with ``change``).
    """
    if actor is not None:
        group = access_by_id(actor, DeviceGroup, group.pk, Action.CHANGE)
        if not (caller := caller_for(actor)) or not caller.is_admin:
            raise ValidationError("Only administrators manage rights.")
    if (user is None) == (role is None):
        raise ValidationError("Grant rights to exactly one user or one role.")
    holder: Any = user if user is not None else role
    if holder.tenant_id != group.tenant_id:
        raise ValidationError({"user" if user is not None else "role": "Unknown user or role."})
    bad = [r for r in rights if r not in DEVICE_GROUP_RIGHTS]
    if bad:
        raise ValidationError({"rights": f"Unknown rights: {', '.join(bad)}."})
    wanted = sorted(set(rights))
    permissions = {p.codename: p for p in Permission.objects.filter(content_type__app_label="devices")}
    if user is not None:
        DeviceGroupUserPermission.objects.filter(content_object=group, user=user).delete()
        DeviceGroupUserPermission.objects.bulk_create(
            [
                DeviceGroupUserPermission(content_object=group, user=user, permission=permissions[f"{r}_devicegroup"])
                for r in wanted
            ]
        )
    else:
        assert role is not None
        DeviceGroupRolePermission.objects.filter(content_object=group, group=role.group).delete()
        DeviceGroupRolePermission.objects.bulk_create(
            DeviceGroupRolePermission(
                content_object=group, group=role.group, permission=permissions[f"{r}_devicegroup"]
            )
            for r in wanted
        )
    audit.record(
        "rights.set",
        tenant=group.tenant_id,
        target=group,
        data={"holder": str(holder), "holder_kind": "user" if user else "role", "rights": wanted},
        actor=actor,
    )
    return wanted


def rights_on(group: DeviceGroup) -> list[dict[str, Any]]:
    """Who holds which rights on ``group``, users and roles alike."""
    grants: dict[tuple[str, int], dict[str, Any]] = {}
    for row in DeviceGroupUserPermission.objects.filter(content_object=group).select_related("user", "permission"):
        entry = grants.setdefault(("user", row.user_id), {"user": row.user_id, "role": None, "rights": []})
        entry["rights"].append(row.permission.codename.split("_")[0])
    for role_row in DeviceGroupRolePermission.objects.filter(content_object=group).select_related(
        "group__cot_role", "permission"
    ):
        role_id = role_row.group.cot_role.pk
        entry = grants.setdefault(("role", role_id), {"user": None, "role": role_id, "rights": []})
        entry["rights"].append(role_row.permission.codename.split("_")[0])
    return [{**g, "rights": sorted(g["rights"])} for g in grants.values()]
