"""Reads about tenants, users and roles that the writes and the cockpit share.

Reads are not writes: nothing here checks a write's access, changes state or audits, so it
lives apart from ``tenants.services`` (which re-exports these names for existing callers).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from tenants import access
from tenants.models import Role, Tenant, User

# The tenant fields a policy write accepts; auditlog's history of tenants follows them too.
POLICY_FIELDS = (
    "name",
    "require_2fa",
    "session_idle_minutes",
    "api_token_max_days",
    "certified_devices_only",
    "auto_accept_registrations",
    "payload_retention_days",
    "rate_limits",
)


# Operators set quotas; each customer's administrators set their own security policy.
OPERATOR_FIELDS = ("name", "rate_limits")


def policy_fields_for(actor: User | None) -> tuple[str, ...]:
    """The tenant fields ``actor`` may change (all of them when the platform acts)."""
    if actor is None:
        return POLICY_FIELDS
    caller = access.require_caller(actor)
    if caller.is_operator:
        return OPERATOR_FIELDS
    if caller.is_admin:
        return tuple(f for f in POLICY_FIELDS if f != "rate_limits")
    return ()


def builtin_role(tenant: Tenant, kind: str) -> Role:
    """The tenant's built-in role of ``kind``."""
    try:
        return Role.objects.get(tenant=tenant, kind=kind)
    except Role.DoesNotExist:
        raise ValidationError({"role": f"Tenant '{tenant.slug}' has no '{kind}' role."}) from None
