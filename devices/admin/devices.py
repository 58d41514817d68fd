"""The cockpit's device list; every write goes through ``devices.services.registry``.

Devices are created by registration, never here. The list filters, searches and runs
the bulk actions (move, block, decommission), each all or nothing through one service
call. The device page (chart, alarms, operations, …) is ``devices.admin.device_page``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from cot.cockpit.actions import action_page, applying, report_refusal
from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, changed_values, visible_rows
from cot.cockpit.site import cockpit
from devices import selectors
from devices.access import reaches_every_group
from devices.admin.device_page import DevicePageMixin
from devices.admin.next_steps import next_steps
from devices.models import Device, DeviceGroup, PayloadPurge
from devices.services import registry
from tenants import access
from tenants.models import Action, User
from tenants.support_middleware import mark_live_refresh

if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class OnlineFilter(admin.SimpleListFilter):
    """Seen within twice the type's heartbeat interval (``selectors.filter_online``, in SQL)."""

    title = "online"
    parameter_name = "online"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return (("yes", "online"), ("no", "offline"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return selectors.filter_online(queryset, value == "yes") if value in ("yes", "no") else queryset


class VisibleChoicesFilter(admin.RelatedOnlyFieldListFilter):
    """Offers the related rows the caller can see (groups, types), read from their own small table.

    Django's related-only filter finds its choices by scanning the distinct values over
    every listed device; for a tenant with many devices the visible groups and types
    themselves are the cheaper, equally scoped answer.
    """

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        rows = visible_rows(field.remote_field.model, request.user)
        return [] if rows is None else [(str(row.pk), str(row)) for row in rows]


class DeviceForm(ServiceForm):
    """The fields of a device that people change; the rest is reported by the device itself."""

    class Meta:
        model = Device
        fields = ("name", "type", "group", "attributes", "certificate_fingerprint")


class MoveForm(forms.Form):
    """The target of "Move to group…": a group the caller may place devices in."""

    group = forms.ModelChoiceField(queryset=DeviceGroup.objects.none(), required=True)

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["group"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = DeviceGroup.objects.restrict(actor, Action.CHANGE)
        caller = access.caller_for(actor)
        if caller is not None and reaches_every_group(caller):
            # Only administrators may take devices out of every group.
            field.required = False
            field.empty_label = "(no group)"


class DecommissionForm(forms.Form):
    """Confirmation of decommissioning, optionally purging the devices' payload data."""

    purge = forms.BooleanField(
        required=False,
        label="Also purge payload data",
        help_text="Deletes the devices' measurements, events, alarms and operation results in the background.",
    )


@admin.register(Device, site=cockpit)
class DeviceAdmin(DevicePageMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Devices in the groups the caller holds rights on; created by registration only."""

    form = DeviceForm
    change_form_template = "admin/devices/device/change_form.html"
    list_display = ("external_id", "name", "type", "group", "status", "firmware_version", "online", "last_seen_at")
    list_filter = (
        ("group", VisibleChoicesFilter),
        ("type", VisibleChoicesFilter),
        "status",
        "firmware_version",
        OnlineFilter,
    )
    list_select_related = ("type", "group")
    search_fields = ("external_id", "name")
    actions = ("move_to_group", "block_devices", "decommission_devices")
    fieldsets = (
        (None, {"fields": ("external_id", "name", "type", "group", "status")}),
        ("State", {"fields": ("firmware_version", "online", "last_seen_at", "location", "registered_at")}),
        ("Security", {"fields": ("credential", "certificate_fingerprint", "decommissioned_at")}),
        ("Attributes", {"fields": ("attributes",)}),
    )
    readonly_fields = (
        "external_id",
        "status",
        "firmware_version",
        "online",
        "last_seen_at",
        "location",
        "registered_at",
        "credential",
        "decommissioned_at",
    )

    # --- columns and read-only fields --------------------------------------------------

    @admin.display(boolean=True, description="online")
    def online(self, obj: Device) -> bool:
        """Seen within twice its type's heartbeat interval."""
        return selectors.is_online(obj)

    @admin.display(description="location")
    def location(self, obj: Device) -> str:
        """Latitude, longitude (and altitude) as last reported."""
        if obj.latitude is None or obj.longitude is None:
            return "—"
        altitude = f", {obj.altitude:g} m" if obj.altitude is not None else ""
        return f"{obj.latitude:.5f}, {obj.longitude:.5f}{altitude} ({obj.located_at:%Y-%m-%d %H:%M})"

    @admin.display(description="credential")
    def credential(self, obj: Device) -> str:
        """The credential's visible prefix and issue time; the secret itself is never stored."""
        if not obj.credential_digest:
            return "none (revoked or never issued)"
        issued = f", issued {obj.credential_issued_at:%Y-%m-%d %H:%M}" if obj.credential_issued_at else ""
        return f"{obj.credential_prefix}…{issued}"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if getattr(request, "htmx", False):
            mark_live_refresh(request)  # the list's rows refreshing themselves (static/cockpit/live.js)
        context = {**(extra_context or {}), "next_steps": next_steps(request, self.admin_site.name)}
        return super().changelist_view(request, context)

    # --- permissions -------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # devices come from registration

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # devices are decommissioned, never deleted

    def has_decommission_permission(self, request: HttpRequest) -> bool:
        """Whoever holds ``delete`` on some visible device (administrators: all)."""
        return self.rows(request, Action.DELETE).exists()

    # --- writes ------------------------------------------------------------------------

    def update_object(self, request: HttpRequest, obj: Device, form: Any) -> None:
        changes = changed_values(form, registry.DEVICE_FIELDS)
        if changes:
            registry.do_update_device(obj, changes, actor=acting_user(request))

    def _refuse_unreachable(self, request: HttpRequest, queryset: QuerySet[Any], action: str, what: str) -> bool:
        """Report (and return True) when part of the selection is visible but not ``action``-able."""
        refused = queryset.exclude(pk__in=self.rows(request, action).values("pk"))
        names = [str(device) for device in refused[:5]]
        if not names:
            return False
        more = refused.count() - len(names)
        listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
        self.message_user(request, f"{what}: you may not change {listed}. Nothing was changed.", messages.ERROR)
        return True

    @admin.action(description="Move to group…", permissions=["change"])
    def move_to_group(self, request: HttpRequest, queryset: QuerySet[Device]) -> HttpResponse | None:
        """Ask for the target group, then move the whole selection or nothing."""
        actor = acting_user(request)
        form = MoveForm(request.POST if applying(request) else None, actor=actor)
        if form.is_bound and form.is_valid():
            if self._refuse_unreachable(request, queryset, Action.CHANGE, "Move"):
                return None
            group = form.cleaned_data["group"]
            try:
                moved = registry.do_move_devices(list(queryset.values_list("pk", flat=True)), group, actor=actor)
            except (ValidationError, PermissionDenied, Http404) as exc:
                report_refusal(self, request, exc, "Move")
                return None
            target = f"“{group}”" if group is not None else "no group"
            self.message_user(request, f"Moved {moved} device(s) to {target}.", messages.SUCCESS)
            return None
        return action_page(
            self,
            request,
            queryset,
            action="move_to_group",
            title="Move devices to a group",
            intro="Choose the group the selected devices move to.",
            form=form,
            submit="Move devices",
        )

    @admin.action(description="Block", permissions=["change"])
    def block_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        """Block the whole selection (their credentials stop working) or nothing."""
        if self._refuse_unreachable(request, queryset, Action.CHANGE, "Block"):
            return
        try:
            blocked = registry.do_block_devices(list(queryset.values_list("pk", flat=True)), actor=acting_user(request))
        except (ValidationError, PermissionDenied, Http404) as exc:
            report_refusal(self, request, exc, "Block")
            return
        self.message_user(request, f"Blocked {blocked} device(s).", messages.SUCCESS)

    @admin.action(description="Decommission…", permissions=["decommission"])
    def decommission_devices(self, request: HttpRequest, queryset: QuerySet[Device]) -> HttpResponse | None:
        """Confirm (optionally with a payload purge), then decommission the whole selection or nothing."""
        form = DecommissionForm(request.POST if applying(request) else None)
        if form.is_bound and form.is_valid():
            if self._refuse_unreachable(request, queryset, Action.DELETE, "Decommission"):
                return None
            actor = acting_user(request)
            purge = form.cleaned_data["purge"]
            ids = list(queryset.values_list("pk", flat=True))
            try:
                done = registry.do_decommission_devices(ids, purge=purge, actor=actor)
            except (ValidationError, PermissionDenied, Http404) as exc:
                report_refusal(self, request, exc, "Decommission")
                return None
            self.message_user(request, self._decommissioned_message(request, done, purge), messages.SUCCESS)
            return None
        return action_page(
            self,
            request,
            queryset,
            action="decommission_devices",
            title="Decommission devices",
            intro=(
                "Decommissioned devices lose their credentials at once, their pending operations are "
                "cancelled, and their external ids can be registered again. This cannot be undone."
            ),
            form=form,
            submit="Yes, decommission",
            danger=True,
        )

    def _decommissioned_message(self, request: HttpRequest, done: list[int], purge: bool) -> str:
        if not done:
            return "The selected devices were already decommissioned."
        text = f"Decommissioned {len(done)} device(s)."
        if not purge:
            return text
        job = (
            PayloadPurge.objects.restrict(request.user, Action.VIEW)
            .filter(device_ids__overlap=done)
            .order_by("-id")
            .first()
        )
        url = (
            reverse(f"{self.admin_site.name}:devices_payloadpurge_change", args=(job.pk,))
            if job is not None
            else reverse(f"{self.admin_site.name}:devices_payloadpurge_changelist")
        )
        return format_html('{} Their payload data is being purged: <a href="{}">follow the progress</a>.', text, url)
