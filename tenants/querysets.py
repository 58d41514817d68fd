"""The queryset half of the access layer: ``Model.objects.restrict(user, action)``."""

from __future__ import annotations

from typing import Any, Self

from django.db import models


class TenantQuerySet(models.QuerySet[Any]):
    """Queryset of a tenant-owned model.

    ``restrict`` is the only way views, admin, API and tasks read tenant rows. It
    delegates to ``tenants.access.restrict_queryset`` so every rule lives in one module.
    The model's ``tenant_lookup`` attribute (default ``"tenant"``) leads from a row to its tenant.
    """

    def restrict(self, user: Any, action: str) -> Self:
        from tenants.access import restrict_queryset

        return restrict_queryset(self, user, action)
