"""Roles in the cockpit: built-in roles read-only, custom roles with device-group rights."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, changed_values
from cot.cockpit.site import cockpit
from tenants import services
from tenants.models import DEVICE_GROUP_RIGHT_CHOICES, Role


class RoleForm(ServiceForm):
    """A custom role: its name, device-group rights as checkboxes, and a description."""

    rights = forms.MultipleChoiceField(
        choices=DEVICE_GROUP_RIGHT_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Role
        fields = ("name", "rights", "description")


@admin.register(Role, site=cockpit)
class RoleAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Built-in roles are shown read-only; custom roles are created, changed and deleted."""

    form = RoleForm
    list_display = ("name", "kind", "rights_list", "description")
    list_filter = ("kind",)
    search_fields = ("name",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", "rights", "description") if obj is None else ("name", "kind", "rights", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("kind",)

    @admin.display(description="rights")
    def rights_list(self, obj: Role) -> str:
        """The role's device-group rights, comma-separated."""
        return ", ".join(obj.rights) or "—"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not (obj is not None and obj.is_builtin) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not (obj is not None and obj.is_builtin) and super().has_delete_permission(request, obj)

    def create_object(self, request: HttpRequest, form: Any) -> Role:
        data = form.cleaned_data
        return services.do_create_role(
            name=data["name"],
            rights=data["rights"],
            description=data["description"],
            actor=acting_user(request),
        )

    def update_object(self, request: HttpRequest, obj: Role, form: Any) -> None:
        changes = changed_values(form, ("name", "rights", "description"))
        if changes:
            services.do_update_role(obj, changes, actor=acting_user(request))

    def delete_object(self, request: HttpRequest, obj: Role) -> None:
        services.do_delete_role(obj, actor=acting_user(request))
