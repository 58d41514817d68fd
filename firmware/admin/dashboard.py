"""The firmware app's panel on the cockpit's home page: rollouts under way, with their progress."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from cot.cockpit.dashboard import DashboardPanel, register_panel
from firmware.admin.rollouts import Progress, rollout_counts
from firmware.models import Rollout
from tenants import access
from tenants.models import Action

UNDER_WAY = (
    Rollout.Status.PLANNING,
    Rollout.Status.READY,
    Rollout.Status.RUNNING,
    Rollout.Status.PAUSED,
    Rollout.Status.CANCELING,
)
SHOWN = 8


def rollouts(request: HttpRequest) -> dict[str, Any] | None:
    """Rollouts being planned, running, paused or canceling that the caller may see, newest first."""
    if not access.may_view_model(request.user, Rollout):
        return None
    rows = list(
        Rollout.objects.restrict(request.user, Action.VIEW)
        .filter(status__in=UNDER_WAY)
        .select_related("image")
        .order_by("-pk")[:SHOWN]
    )
    counts = rollout_counts(request.user, rows)
    return {
        "rollouts": [
            {
                "url": reverse("cockpit:firmware_rollout_change", args=[rollout.pk]),
                "name": rollout.name,
                "version": rollout.image.version,
                "status": rollout.get_status_display(),
                "paused": rollout.status == Rollout.Status.PAUSED,
                "reason": rollout.status_reason,
                "progress": Progress.of(counts.get(rollout.pk, {}), rollout.planned_total).bar(),
            }
            for rollout in rows
        ],
        "list_url": reverse("cockpit:firmware_rollout_changelist"),
    }


def register() -> None:
    """Put the rollouts panel on the cockpit's home page."""
    register_panel(
        DashboardPanel(
            "rollouts", "Rollouts under way", "admin/firmware/dashboard/rollouts.html", rollouts, 60, wide=True
        )
    )
