"""Writes to device groups and the rights granted on them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection, transaction

import audit
from cot.exceptions import Conflict
from cot.updates import save_changes
from devices.models import Device, DeviceGroup, DeviceGroupRolePermission, DeviceGroupUserPermission, DeviceRegistration
from tenants.access import access_by_id, manages_rights, tenant_for_add
from tenants.models import DEVICE_GROUP_RIGHTS, Action, Role, Tenant, User

GROUP_FIELDS = ("name", "description", "parent")
# Key of the advisory lock that serialises tree changes within one tenant (``grp``).
_TREE_LOCK = 0x677270
# Bounds the walk up the tree even if stored rows were ever to form a loop.
MAX_TREE_DEPTH = 1000


@transaction.atomic
def do_create_device_group(
    *,
    name: str,
    description: str = "",
    parent: DeviceGroup | None = None,
    actor: User | None,
    tenant: Tenant | None = None,
) -> DeviceGroup:
    """Create a device group in the actor's tenant, optionally under ``parent``."""
    tenant = tenant_for_add(actor, DeviceGroup, tenant)
    if DeviceGroup.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"A device group named '{name}' already exists."})
    if parent is not None:
        _lock_tree(tenant.pk)
        _check_parent(actor, tenant.pk, None, parent)
    group = DeviceGroup(tenant=tenant, name=name, description=description, parent=parent)
    group.full_clean()
    group.save()
    return group


@transaction.atomic
def do_update_device_group(group: DeviceGroup, changes: dict[str, Any], *, actor: User | None) -> DeviceGroup:
    """Rename, describe or move a group in the tree (auditlog records name and description).

    A new ``parent`` must be a group of the same tenant on which the actor holds
    ``change`` (administrators: any), and never the group itself or one of its own
    subgroups. Moving a group changes navigation only: rights stay on each group. An
    empty parent from an actor who cannot see the current one leaves it where it is.
    """
    if actor is not None:
        group = access_by_id(actor, DeviceGroup, group.pk, Action.CHANGE)
    unknown = set(changes) - set(GROUP_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown device group fields: {', '.join(sorted(unknown))}.")
    name = changes.get("name")
    if name and DeviceGroup.objects.filter(tenant=group.tenant_id, name=name).exclude(pk=group.pk).exists():
        raise ValidationError({"name": f"A device group named '{name}' already exists."})
    old_parent = group.parent_id
    clears_parent = changes.get("parent", False) is None and old_parent is not None and actor is not None
    if clears_parent and not DeviceGroup.objects.restrict(actor, Action.VIEW).filter(pk=old_parent).exists():
        # The caller was never shown this parent (it reads as empty to them): an empty
        # parent in their change means "as it is", not "move to the top".
        changes = {name: value for name, value in changes.items() if name != "parent"}
    if "parent" in changes:
        parent = changes["parent"]
        _lock_tree(group.tenant_id)
        if parent is not None:
            _check_parent(actor, group.tenant_id, group, parent)
    save_changes(group, changes)  # auditlog records name and description
    if group.parent_id != old_parent:
        audit.record(
            "group.move",
            tenant=group.tenant_id,
            target=group,
            changes={"parent": [old_parent, group.parent_id]},
            actor=actor,
        )
    return group


def _lock_tree(tenant_id: int) -> None:
    """Serialise parent changes per tenant: two concurrent moves cannot close a cycle."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_TREE_LOCK, tenant_id])


def _check_parent(actor: User | None, tenant_id: int, group: DeviceGroup | None, parent: DeviceGroup) -> None:
    """Refuse a parent of another tenant, one the actor may not change, or a cycle."""
    if actor is not None:
        reachable = DeviceGroup.objects.restrict(actor, Action.CHANGE).filter(pk=parent.pk).exists()
        if not reachable:
            raise ValidationError({"parent": "You may not place groups under that group."})
    if parent.tenant_id != tenant_id:
        raise ValidationError({"parent": "Unknown group."})
    if group is None:
        return
    if group.pk in ancestor_ids(parent):
        raise ValidationError(
            {"parent": f"'{parent}' is '{group}' itself or one of its subgroups; a group cannot be placed under it."}
        )


def ancestor_ids(group: DeviceGroup) -> list[int]:
    """``group``'s id followed by those of its parent, grandparent, … up to its root (one query)."""
    table = connection.ops.quote_name(DeviceGroup._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE up(id, parent_id, depth) AS (
                SELECT id, parent_id, 0 FROM {table} WHERE id = %s
                UNION
                SELECT g.id, g.parent_id, up.depth + 1
                FROM {table} g JOIN up ON g.id = up.parent_id
                WHERE up.depth < %s
            )
            SELECT id FROM up ORDER BY depth
            """,  # noqa: S608 - the table name comes from the model, values are parameters
            [group.pk, MAX_TREE_DEPTH],
        )
        return [row[0] for row in cursor.fetchall()]


@transaction.atomic
def deletion_conflict(group: DeviceGroup) -> Conflict | None:
    """What keeps ``group`` from being deleted, as the 409 to answer, or ``None`` when it is empty.

    Counted, not collected: a group may hold a hundred thousand devices (decommissioned
    ones included: devices are never deleted), and counts say enough without naming rows.
    """
    in_the_way = {
        "subgroup(s)": DeviceGroup.objects.filter(parent=group.pk).count(),
        "device(s)": Device.objects.filter(group=group.pk).count(),
        "registration(s)": DeviceRegistration.objects.filter(group=group.pk).count(),
    }
    held = [f"{count} {kind}" for kind, count in in_the_way.items() if count]
    if not held:
        return None
    return Conflict(f"The group still holds {', '.join(held)}: move them to another group first.")


@transaction.atomic
def do_delete_device_group(group: DeviceGroup, *, actor: User | None) -> None:
    """Delete an empty group and the rights granted on it; 409 naming what is still in it."""
    if actor is not None:
        group = access_by_id(actor, DeviceGroup, group.pk, Action.DELETE)
    # Locked: a device or registration placed in the group meanwhile waits for this
    # transaction (its foreign key needs the row), so the counts stay true until the delete.
    DeviceGroup.objects.select_for_update().filter(pk=group.pk).first()
    conflict = deletion_conflict(group)
    if conflict is not None:
        raise conflict
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
        if not manages_rights(actor):
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
    # A user's rights live in the user table, a role's in the group table (under its auth.Group).
    table: Any
    held_by: dict[str, Any]
    if user is not None:
        table, held_by = DeviceGroupUserPermission, {"user": user}
    else:
        assert role is not None
        table, held_by = DeviceGroupRolePermission, {"group": role.group}
    table.objects.filter(content_object=group, **held_by).delete()
    table.objects.bulk_create(
        [table(content_object=group, permission=permissions[f"{r}_devicegroup"], **held_by) for r in wanted]
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
