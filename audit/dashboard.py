"""The audit app's panel on the cockpit's home page: the newest security events of the tenant.

Only callers who may read the trail (the tenant's administrators, support inside a
grant) see it; the entries come through ``AuditEntry.objects.restrict`` like every read.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse

from audit.models import AuditEntry
from cot.cockpit.dashboard import DashboardPanel, register_panel
from tenants import access
from tenants.models import Action

# Events about who may do what: sign-ins and lockouts, two-factor, users, roles, rights,
# API tokens, tenant policy, support access and device credentials.
SECURITY_EVENT_PREFIXES = (
    "auth.",
    "2fa.",
    "user.",
    "role.",
    "rights.",
    "token.",
    "tenant.policy",
    "support_grant.",
    "device.credential_",
    "registration.wrong_token",
    "registration.throttled",
)
RECENT = 8


def security_events(request: HttpRequest) -> dict[str, Any] | None:
    """The newest security events the caller may read, newest first."""
    if not access.may_view_model(request.user, AuditEntry):
        return None
    security = reduce(or_, (Q(event__startswith=prefix) for prefix in SECURITY_EVENT_PREFIXES))
    rows = AuditEntry.objects.restrict(request.user, Action.VIEW).filter(security).order_by("-id")
    entries = [
        {
            "url": reverse("cockpit:audit_auditentry_change", args=[entry.pk]),
            "event": entry.event,
            "actor": entry.actor_label,
            "timestamp": entry.timestamp,
        }
        for entry in rows.only("pk", "event", "actor_label", "timestamp")[:RECENT]
    ]
    return {"entries": entries, "list_url": reverse("cockpit:audit_auditentry_changelist")}


def register() -> None:
    """Put the security events panel on the cockpit's home page."""
    register_panel(
        DashboardPanel(
            "security-events",
            "Security events",
            "admin/audit/dashboard/security_events.html",
            security_events,
            90,
            wide=True,
        )
    )
