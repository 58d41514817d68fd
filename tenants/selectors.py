"""Reads about tenants, users and roles that the writes and the cockpit share.

Reads are not writes: nothing here checks a write's access, changes state or audits, so it
lives apart from ``tenants.services`` (which re-exports these names for existing callers).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from cot.database.scope import cross_tenant
from tenants import access
from tenants.models import Role, Tenant, User

# The tenant fields a policy write accepts; auditlog's history of tenants follows them too.
POLICY_FIELDS = (
    "name",
    "require_2fa",
    "require_passkeys",
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


@dataclass(frozen=True)
class IsolationSummary:
    """The newest isolation check in one sentence, and whether it found rows."""

    text: str
    found_rows: bool = False


def last_isolation_check(user: access.AnyUser) -> IsolationSummary | None:
    """For platform operators: the newest isolation check's result; None for everyone else.

    Read from the platform's audit chain (``tenants.services.isolation`` writes one entry
    per run), which no tenant's view shows.
    """
    from audit.models import AuditEntry

    caller = access.caller_for(user)
    if caller is None or not caller.is_operator:
        return None
    with cross_tenant("audit.platform_chain"):
        entry = (
            AuditEntry.objects.filter(tenant__isnull=True, event="isolation.check")
            .order_by("-tenant_id", "-seq")
            .only("timestamp", "additional_data")
            .first()
        )
    if entry is None:
        return IsolationSummary("The isolation check has not run yet (beat runs it hourly; check_isolation now).")
    data = entry.additional_data or {}
    when = f"{entry.timestamp:%Y-%m-%d %H:%M} UTC"
    if data.get("clean"):
        return IsolationSummary(
            f"Isolation check of {when}: no rows tie tenants together ({data.get('checks')} checks)."
        )
    return IsolationSummary(
        f"Isolation check of {when}: {data.get('found')} row(s) tie tenants together. "
        "Run manage.py check_isolation for the list; the operators were mailed.",
        found_rows=True,
    )
