"""Cockpit pages for device groups and the rights users and roles hold on them."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from devices import services
from devices.models import DeviceGroup
from tenants import access
from tenants.admin_mixins import ServiceForm, TenantScopedAdminMixin, acting_user, report_service_error
from tenants.admin_site import cockpit
from tenants.models import DEVICE_GROUP_RIGHTS, Action, Role, User


class DeviceGroupForm(ServiceForm):
    """A device group's name and description."""

    class Meta:
        model = DeviceGroup
        fields = ("name", "description")


class RightsForm(forms.Form):
    """Replace the rights of exactly one user or one role; choices are the caller's visible rows."""

    user = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    role = forms.ModelChoiceField(queryset=Role.objects.none(), required=False)
    rights = forms.MultipleChoiceField(
        choices=[(right.value, right.label) for right in DEVICE_GROUP_RIGHTS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked to take every right away.",
    )

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["user"]).queryset = User.objects.restrict(actor, Action.VIEW)
        cast(forms.ModelChoiceField, self.fields["role"]).queryset = Role.objects.restrict(actor, Action.VIEW)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and (cleaned.get("user") is None) == (cleaned.get("role") is None):
            raise ValidationError("Choose exactly one user or one role.")
        return cleaned


@admin.register(DeviceGroup, site=cockpit)
class DeviceGroupAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Device groups; administrators also manage who holds which rights on each."""

    form = DeviceGroupForm
    list_display = ("name", "description")
    search_fields = ("name",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and self._is_admin(request):
            return ("name", "description", "rights_link")
        return ("name", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("rights_link",) if obj is not None else ()

    @admin.display(description="rights")
    def rights_link(self, obj: DeviceGroup) -> str:
        """A link to the group's rights page."""
        url = reverse(f"{self.admin_site.name}:devices_devicegroup_rights", args=(obj.pk,))
        return format_html('<a href="{}">Who holds which rights…</a>', url)

    def create_object(self, request: HttpRequest, form: Any) -> DeviceGroup:
        data = form.cleaned_data
        return services.do_create_device_group(
            name=data["name"], description=data["description"], actor=acting_user(request)
        )

    def update_object(self, request: HttpRequest, obj: DeviceGroup, form: Any) -> None:
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        if changes:
            services.do_update_device_group(obj, changes, actor=acting_user(request))

    def delete_object(self, request: HttpRequest, obj: DeviceGroup) -> None:
        services.do_delete_device_group(obj, actor=acting_user(request))

    def get_urls(self) -> list[URLPattern]:
        rights = path(
            "<path:object_id>/rights/",
            self.admin_site.admin_view(self.rights_view),
            name="devices_devicegroup_rights",
        )
        return [rights, *super().get_urls()]

    @staticmethod
    def _is_admin(request: HttpRequest) -> bool:
        caller = access.caller_for(request.user)
        return caller is not None and caller.is_admin

    def rights_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """List the holders of rights on a group and replace one holder's rights."""
        group = self.get_object(request, unquote(object_id))  # 404 when out of reach
        if not self._is_admin(request):
            raise PermissionDenied
        actor = acting_user(request)
        form = RightsForm(request.POST or None, actor=actor)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                services.do_set_device_group_rights(
                    group, rights=data["rights"], user=data["user"], role=data["role"], actor=actor
                )
            except ValidationError as exc:
                report_service_error(form, exc)
            else:
                self.message_user(request, f"Rights of {data['user'] or data['role']} set.", messages.SUCCESS)
                return HttpResponseRedirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rights on {group}",
            "opts": self.opts,
            "original": group,
            "form": form,
            "holders": self._holders(actor, group),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/devices/devicegroup/rights.html", context)

    @staticmethod
    def _holders(actor: User, group: DeviceGroup) -> list[dict[str, Any]]:
        """``rights_on`` with names; a holder the caller cannot see is left out, not named."""
        grants = services.rights_on(group)
        users = User.objects.restrict(actor, Action.VIEW).in_bulk([g["user"] for g in grants if g["user"]])
        roles = Role.objects.restrict(actor, Action.VIEW).in_bulk([g["role"] for g in grants if g["role"]])
        holders = []
        for grant in grants:
            holder = users.get(grant["user"]) if grant["user"] else roles.get(grant["role"])
            if holder is not None:
                kind = "user" if grant["user"] else "role"
                holders.append({"kind": kind, "name": str(holder), "rights": grant["rights"]})
        return sorted(holders, key=lambda h: (h["kind"], h["name"]))
