"""Writes to the tenant itself: creation with its built-in roles, status and policy.

A tenant's status and its policy are separate writes on purpose: operators suspend, each
customer's administrators set their own security policy, and neither write may undo the other.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from cot.database.scope import tenant_scope
from cot.updates import save_changes
from tenants import access
from tenants.models import Action, Role, Tenant, User
from tenants.selectors import POLICY_FIELDS, policy_fields_for
from tenants.services.roles import _create_role_row

CUSTOMER_BUILTIN_ROLES = (
    ("Administrator", Role.Kind.ADMINISTRATOR),
    ("Standard user", Role.Kind.STANDARD),
    ("Business user", Role.Kind.BUSINESS),
)
PROVIDER_BUILTIN_ROLES = (("Operator", Role.Kind.OPERATOR), ("Support", Role.Kind.SUPPORT))


@transaction.atomic
def do_create_tenant(*, slug: str, name: str, provider: bool = False, actor: User | None = None) -> Tenant:
    """Create a tenant with its built-in roles."""
    access.require_add(actor, Tenant)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A tenant with slug '{slug}' already exists."})
    if provider and Tenant.objects.filter(kind=Tenant.Kind.PROVIDER).exists():
        raise ValidationError("The provider tenant already exists; there is only one.")
    tenant = Tenant(slug=slug, name=name, kind=Tenant.Kind.PROVIDER if provider else Tenant.Kind.CUSTOMER)
    tenant.full_clean()
    tenant.save()
    roles = PROVIDER_BUILTIN_ROLES if provider else CUSTOMER_BUILTIN_ROLES
    with tenant_scope(tenant.pk):  # the operator's own scope holds only tenants' rows
        for role_name, kind in roles:
            _create_role_row(tenant, role_name, kind, rights=[])
    audit.record("tenant.create", tenant=tenant, target=tenant, data={"roles": [n for n, _ in roles]}, actor=actor)
    return tenant


@transaction.atomic
def do_set_tenant_maintenance(tenant: Tenant, mode: str, *, reason: str = "", actor: User | None = None) -> Tenant:
    """Put a tenant into maintenance (read-only or closed) or take it out; audited in its trail.

    Operators do it by hand; data migrations that touch a tenant do it themselves
    (``actor=None``, see ``tenants.maintenance``). The access layer reads the mode on every
    request: read-only refuses every write, closed answers nothing but a maintenance notice.
    """
    if actor is not None:
        tenant = access.access_by_id(actor, Tenant, tenant.pk, Action.CHANGE)
        if not access.manages_tenants(actor):
            raise PermissionDenied("Only platform operators put a tenant into maintenance.")
    if mode not in Tenant.Maintenance.values:
        raise ValidationError({"maintenance": f"Unknown maintenance mode '{mode}'."})
    if tenant.is_provider and mode:
        raise ValidationError("The provider tenant cannot be put into maintenance (its operators end maintenance).")
    reason = reason.strip()[:200] if mode else ""
    old = tenant.maintenance
    Tenant.objects.filter(pk=tenant.pk).update(maintenance=mode, maintenance_reason=reason)
    tenant.maintenance, tenant.maintenance_reason = mode, reason
    audit.record(
        "tenant.maintenance",
        tenant=tenant,
        target=tenant,
        changes={"maintenance": [old, mode]},
        data={"reason": reason},
        actor=actor,
    )
    return tenant


@transaction.atomic
def do_set_tenant_status(tenant: Tenant, status: str, *, actor: User | None = None) -> Tenant:
    """Suspend or reactivate a tenant; a suspended tenant loses all access at once."""
    if actor is not None:
        tenant = access.access_by_id(actor, Tenant, tenant.pk, Action.CHANGE)
        if not access.manages_tenants(actor):
            raise PermissionDenied("Only platform operators change a tenant's status.")
    if status not in Tenant.Status.values:
        raise ValidationError({"status": f"Unknown status '{status}'."})
    if tenant.is_provider and status != Tenant.Status.ACTIVE:
        raise ValidationError("The provider tenant cannot be suspended.")
    old = tenant.status
    Tenant.objects.filter(pk=tenant.pk).update(status=status)
    tenant.status = status
    audit.record("tenant.status", tenant=tenant, target=tenant, changes={"status": [old, status]}, actor=actor)
    return tenant


@transaction.atomic
def do_update_tenant_policy(tenant: Tenant, changes: dict[str, Any], *, actor: User | None = None) -> Tenant:
    """Change a tenant's name, security policy (administrators) or quotas (operators)."""
    if actor is not None:
        tenant = access.access_by_id(actor, Tenant, tenant.pk, Action.CHANGE)
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
    refused = set(changes) - set(policy_fields_for(actor))
    if refused:
        raise PermissionDenied(f"You may not change: {', '.join(sorted(refused))}.")
    # Saves only the changed columns: a full-row save would undo a concurrent suspension.
    return save_changes(tenant, changes, audit_event="tenant.policy", tenant=tenant, actor=actor)
