"""Tenants in the cockpit: operators create, suspend and reactivate them; administrators edit their policy."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, changed_values
from cot.cockpit.site import cockpit
from tenants import access, selectors, services
from tenants.models import Tenant


class TenantForm(ServiceForm):
    """Slug and name when adding; the policy fields when changing (the admin picks which)."""

    class Meta:
        model = Tenant
        fields = ("slug", "name", *services.POLICY_FIELDS)


@admin.register(Tenant, site=cockpit)
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Operators list, create, suspend and reactivate tenants; administrators edit their policy."""

    form = TenantForm
    list_display = ("slug", "name", "kind", "status", "maintenance")
    list_filter = ("kind", "status", "maintenance")
    search_fields = ("slug", "name")
    actions = ("suspend", "reactivate", "read_only_maintenance", "close_for_maintenance", "end_maintenance")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("slug", "name")
        return ("slug", "kind", "status", "maintenance", "maintenance_reason", *services.POLICY_FIELDS, "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        editable = services.policy_fields_for(acting_user(request))
        fixed = ("slug", "kind", "status", "maintenance", "maintenance_reason")
        return (*fixed, *(f for f in services.POLICY_FIELDS if f not in editable), "created_at")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        isolation = selectors.last_isolation_check(request.user)
        return super().changelist_view(request, {**(extra_context or {}), "isolation_check": isolation})

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_status_permission(self, request: HttpRequest) -> bool:
        """Only platform operators suspend or reactivate tenants."""
        return access.manages_tenants(request.user)

    def create_object(self, request: HttpRequest, form: Any) -> Tenant:
        data = form.cleaned_data
        return services.do_create_tenant(slug=data["slug"], name=data["name"], actor=acting_user(request))

    def update_object(self, request: HttpRequest, obj: Tenant, form: Any) -> None:
        changes = changed_values(form, services.policy_fields_for(acting_user(request)))
        if changes:
            services.do_update_tenant_policy(obj, changes, actor=acting_user(request))

    @admin.action(description="Suspend selected tenants", permissions=["status"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """Suspend each selected tenant; its users lose access at once."""

        def step(tenant: Tenant) -> None:
            services.do_set_tenant_status(tenant, Tenant.Status.SUSPENDED, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Suspended")

    @admin.action(description="Reactivate selected tenants", permissions=["status"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """Reactivate each selected tenant."""

        def step(tenant: Tenant) -> None:
            services.do_set_tenant_status(tenant, Tenant.Status.ACTIVE, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Reactivated")

    def _maintenance(self, request: HttpRequest, queryset: QuerySet[Tenant], mode: str, done: str) -> None:
        def step(tenant: Tenant) -> None:
            reason = "" if not mode else "set by a platform operator"
            services.do_set_tenant_maintenance(tenant, mode, reason=reason, actor=acting_user(request))

        run_for_each(self, request, queryset, step, done)

    @admin.action(description="Maintenance: read-only", permissions=["status"])
    def read_only_maintenance(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """The tenant's people may read, not change, until maintenance ends."""
        self._maintenance(request, queryset, Tenant.Maintenance.READ_ONLY, "Put into read-only maintenance")

    @admin.action(description="Maintenance: closed", permissions=["status"])
    def close_for_maintenance(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """The tenant's people and devices get a maintenance notice (503) instead of anything else."""
        self._maintenance(request, queryset, Tenant.Maintenance.CLOSED, "Closed for maintenance")

    @admin.action(description="End maintenance", permissions=["status"])
    def end_maintenance(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """Back to normal."""
        self._maintenance(request, queryset, Tenant.Maintenance.OFF, "Ended maintenance of")


def _maintenance_notices(request: HttpRequest) -> list[str]:
    """For the tenant's people (and support inside it), on every page: it is in read-only maintenance."""
    caller = access.caller_for(request.user)
    return [access.maintenance_notice(caller.tenant)] if caller is not None and caller.in_maintenance else []


cockpit.register_notices(_maintenance_notices)


def _isolation_notices(request: HttpRequest) -> list[str]:
    """For operators, on every page: the newest isolation check, when it found rows."""
    summary = selectors.last_isolation_check(request.user)
    return [summary.text] if summary and summary.found_rows else []


cockpit.register_notices(_isolation_notices)
