"""Access rules of the firmware app's models, registered with ``tenants.access``.

Every member of a tenant may read its firmware catalogue (images, their device types,
the public keys and the policy): nothing in it is secret, and Standard users who may
run rollouts need to see what they roll out. Only the tenant's administrators change
it, and never a support engineer, whatever the grant's scope: an image, a key or the
signature policy decides what code the whole fleet will run.

Rollouts decide which devices run which code. Administrators create and change them; a
Standard user creates a rollout of groups they may change, and changes (plans, starts,
pauses, resumes, cancels, retries, advances) a rollout, only
when the tenant's firmware policy lets Standard users roll out and the rollout names
device groups, every one of which grants the user ``change``. A rollout that names no
group (the whole fleet, types or versions only) stays the administrators'. Support
engineers never change one (also not under a write grant), Business users never write.
Waves, targets and counters are written by the services and the engine only, after the
check on their rollout. Under a support grant limited to device groups, the engineer sees
the rollouts of those groups only (``within_group_limit``), and their targets, waves and
counters.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef, QuerySet

from devices.access import device_groups_q
from devices.models import DeviceGroup
from firmware.models import FirmwarePolicy
from tenants.access import Caller, administrators, pinned, register, tenant_readable
from tenants.models import Action, Role


def within_group_limit(qs: QuerySet[Any], caller: Caller, groups_field: str = "target_groups") -> QuerySet[Any]:
    """Under a support grant limited to device groups, the rollouts (or their parts) of those groups only.

    A rollout is within the limit when it names device groups, all of them in the limit: one
    that names none (the whole fleet, types or versions) or another group would show the
    engineer counts and progress of devices outside the grant.
    """
    limit = caller.device_group_limit
    if limit is None:
        return qs
    return qs.filter(**{f"{groups_field}__len__gt": 0, f"{groups_field}__contained_by": list(limit)})


def rollout_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Every member reads; administrators change; Standard users those whose every group they may change, by policy.

    Standard users (the built-in role, not custom roles) change a rollout only while the
    tenant's ``FirmwarePolicy.standard_users_roll_out`` is on and its ``target_groups``
    is non-empty and contained in the groups granting them ``change``. Deny by default:
    any other role, action or missing policy row matches nothing.
    """
    qs = within_group_limit(pinned(qs, caller), caller)
    if action == Action.VIEW or caller.acts_as_admin:
        return qs
    if action != Action.CHANGE or caller.role.kind != Role.Kind.STANDARD or Action.CHANGE not in caller.rights:
        return qs.none()
    changeable = DeviceGroup.objects.filter(tenant=caller.tenant.pk).filter(device_groups_q(caller, Action.CHANGE))
    return qs.filter(
        Exists(FirmwarePolicy.objects.filter(tenant=OuterRef("tenant"), standard_users_roll_out=True)),
        target_groups__len__gt=0,
        target_groups__contained_by=ArraySubquery(changeable.order_by().values("pk")),
    )


def rollout_target_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Every member reads the targets; a limited support grant those of its groups' devices in its groups' rollouts."""
    qs = tenant_readable(qs, caller, action)
    limit = caller.device_group_limit
    if limit is None:
        return qs
    return within_group_limit(qs.filter(device__group__in=limit), caller, "rollout__target_groups")


def rollout_part_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Waves and counters: every member reads them; a limited support grant those of its groups' rollouts."""
    return within_group_limit(tenant_readable(qs, caller, action), caller, "rollout__target_groups")


def rollout_creators(caller: Caller) -> bool:
    """The tenant's own administrators; Standard users by policy (for their groups: checked by the service)."""
    if caller.is_admin:
        return True
    return (
        caller.role.kind == Role.Kind.STANDARD
        and Action.CHANGE in caller.rights
        and FirmwarePolicy.objects.filter(tenant=caller.tenant.pk, standard_users_roll_out=True).exists()
    )


def register_rules() -> None:
    """The firmware app's models (called from ``FirmwareConfig.ready``)."""
    register("firmware.FirmwareImage", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.FirmwareImageType", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.SigningKey", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.FirmwarePolicy", tenant_readable, add=administrators, support_never_writes=True)
    register("firmware.Rollout", rollout_rule, add=rollout_creators, support_never_writes=True)
    # Written by the services and the engine after the check on their rollout.
    for label in ("firmware.RolloutWave", "firmware.RolloutCounter"):
        register(label, rollout_part_rule, add=administrators, support_never_writes=True)
    register("firmware.RolloutTarget", rollout_target_rule, add=administrators, support_never_writes=True)
