"""A tenant-scoped model nobody registered rules for."""

from django.db import models

from tenants.querysets import TenantQuerySet


class Unruled(models.Model):  # noqa: DJ008
    """Rows of a tenant that no access rule covers."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE)

    objects = TenantQuerySet.as_manager()

    class Meta:
        app_label = "throwaway"
