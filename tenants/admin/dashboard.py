"""The tenants app's panel on the cockpit's home page: support access open now, with the time it has left."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from cot.cockpit.dashboard import DashboardPanel, register_panel
from tenants import access
from tenants.models import Action, SupportGrant


def support_grants(request: HttpRequest) -> dict[str, Any] | None:
    """Grants neither revoked nor expired (bound to an engineer or still waiting for one), soonest end first."""
    if not access.may_view_model(request.user, SupportGrant):
        return None
    now = timezone.now()
    rows = (
        SupportGrant.objects.restrict(request.user, Action.VIEW)
        .filter(Q(revoked_at__isnull=True), expires_at__gt=now)
        .select_related("engineer")
        .order_by("expires_at", "pk")
    )
    grants = [
        {
            "url": reverse("cockpit:tenants_supportgrant_change", args=[grant.pk]),
            "reason": grant.reason,
            "scope": grant.get_scope_display(),
            "engineer": grant.engineer.email if grant.engineer else "",
            "status": grant.status_at(now),
            "expires_at": grant.expires_at,
        }
        for grant in rows[:10]
    ]
    return {"grants": grants, "list_url": reverse("cockpit:tenants_supportgrant_changelist")}


def register() -> None:
    """Put the support grants panel on the cockpit's home page."""
    register_panel(
        DashboardPanel(
            "support-grants", "Support access", "admin/tenants/dashboard/support_grants.html", support_grants, 38
        )
    )
