"""Writes to roles.

Each role is mirrored by an ``auth.Group`` that guardian's object permissions hang on, so roles
are created and deleted only here, where the mirror changes with them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from cot.updates import save_changes
from tenants import access
from tenants.models import DEVICE_GROUP_RIGHTS, Action, Role, Tenant, User


def _create_role_row(tenant: Tenant, name: str, kind: str, rights: list[str], description: str = "") -> Role:
    group = Group.objects.create(name=f"tenant-{tenant.pk}-role-{uuid.uuid4().hex}")
    role = Role(tenant=tenant, name=name, kind=kind, rights=rights, description=description, group=group)
    role.full_clean()
    role.save()
    return role


def _clean_rights(rights: Sequence[str]) -> list[str]:
    bad = [r for r in rights if r not in DEVICE_GROUP_RIGHTS]
    if bad:
        allowed = ", ".join(DEVICE_GROUP_RIGHTS)
        raise ValidationError({"rights": f"Unknown rights {', '.join(map(str, bad))}; choose from {allowed}."})
    return sorted(set(rights))


@transaction.atomic
def do_create_role(
    *, name: str, rights: Sequence[str] = (), description: str = "", actor: User | None, tenant: Tenant | None = None
) -> Role:
    """Create a custom role carrying device-group rights (none until given some)."""
    tenant = access.tenant_for_add(actor, Role, tenant)
    if Role.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"A role named '{name}' already exists."})
    role = _create_role_row(tenant, name, Role.Kind.CUSTOM, _clean_rights(rights), description)
    audit.record("role.create", tenant=tenant, target=role, data={"rights": role.rights}, actor=actor)
    return role


@transaction.atomic
def do_update_role(role: Role, changes: dict[str, Any], *, actor: User | None) -> Role:
    """Rename a custom role or change its rights; built-in roles are fixed."""
    if actor is not None:
        role = access.access_by_id(actor, Role, role.pk, Action.CHANGE)
    if role.is_builtin:
        raise ValidationError("Built-in roles cannot be changed.")
    if "rights" in changes:
        changes["rights"] = _clean_rights(changes["rights"])
    return save_changes(role, changes, audit_event="role.update", tenant=role.tenant_id, actor=actor)


@transaction.atomic
def do_delete_role(role: Role, *, actor: User | None) -> None:
    """Delete a custom role nobody holds any more."""
    if actor is not None:
        role = access.access_by_id(actor, Role, role.pk, Action.DELETE)
    if role.is_builtin:
        raise ValidationError("Built-in roles cannot be deleted.")
    if role.members.exists():
        raise ValidationError("The role still has members; give them another role first.")
    audit.record("role.delete", tenant=role.tenant_id, target=role, actor=actor)
    group = role.group
    role.delete()
    group.delete()
