"""The firmware policy in the cockpit: one page, the caller's own tenant's policy, edited in place.

A tenant has at most one policy row, and none until an administrator first changes it
(``firmware.selectors.policy_for`` supplies the defaults meanwhile). So the list page
does not ask anyone to pick a row: it shows a form for the caller's own policy, built
from ``policy_for(caller.tenant)`` and saved through ``do_update_firmware_policy``, whose
``tenant_for_add`` decides who may change it (the tenant's administrators, never
support). Nobody adds or deletes rows here. Underneath, the page is still Django's
scoped changelist (its template shows the form instead of the table), so its rows, any
query string and the stored row's own page go through ``TenantScopedAdminMixin`` like
every other admin: only the caller's row is ever selected, a stray lookup is a 400 and
another tenant's policy URL answers 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, changed_values, report_service_error
from cot.cockpit.site import cockpit
from firmware import selectors, services
from firmware.models import FirmwarePolicy
from firmware.services.policy import POLICY_FIELDS
from tenants import access

SAVE_FIELD = "_save_policy"


class FirmwarePolicyForm(ServiceForm):
    """Whether releases must be signed, and the largest image the tenant accepts."""

    class Meta:
        model = FirmwarePolicy
        fields = POLICY_FIELDS


@admin.register(FirmwarePolicy, site=cockpit)
class FirmwarePolicyAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """The list page is the caller's policy form; administrators save it, everyone else reads it."""

    form = FirmwarePolicyForm
    change_list_template = "admin/firmware/firmwarepolicy/change_list.html"
    list_display = ("__str__", "require_signatures", "max_image_bytes")
    fields = POLICY_FIELDS
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The row appears with the first change (the service creates it); never from a form.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def may_edit(self, request: HttpRequest) -> bool:
        """Whether the caller may change their tenant's policy: the rule ``tenant_for_add`` applies."""
        return access.can_add(request.user, FirmwarePolicy)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        caller = access.require_caller(request.user)
        policy = selectors.policy_for(caller.tenant)
        editable = self.may_edit(request)
        if request.method == "POST" and SAVE_FIELD in request.POST:
            if not editable:
                raise PermissionDenied
            form = FirmwarePolicyForm(request.POST, instance=policy)
            if form.is_valid():
                try:
                    services.do_update_firmware_policy(changed_values(form), actor=acting_user(request))
                except ValidationError as exc:
                    report_service_error(form, exc)
                else:
                    self.message_user(request, "The firmware policy was saved.", messages.SUCCESS)
                    return HttpResponseRedirect(request.path)
        else:
            form = FirmwarePolicyForm(instance=policy)
        if not editable:
            for field in form.fields.values():
                field.disabled = True
        context = {
            **(extra_context or {}),
            "policy_form": form,
            "policy_editable": editable,
            "policy_save_field": SAVE_FIELD,
            "policy_stored": policy.pk is not None and not policy._state.adding,
        }
        return super().changelist_view(request, context)

    def update_object(self, request: HttpRequest, obj: FirmwarePolicy, form: Any) -> None:
        services.do_update_firmware_policy(changed_values(form, POLICY_FIELDS), actor=acting_user(request))

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        # The list page is where the policy lives.
        self.message_user(request, "The firmware policy was saved.", messages.SUCCESS)
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:firmware_firmwarepolicy_changelist"))
