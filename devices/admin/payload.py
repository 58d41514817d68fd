"""Cockpit pages for payload data: the alarm list and the progress of payload purges.

Alarms live in the ``telemetry`` database; the router sends the admin's queries there
and ``Alarm.objects.restrict`` scopes them like any other row. Devices are named by a
second, restricted lookup in the registry (the stores cannot be joined).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from cot.cockpit.actions import report_refusal
from cot.cockpit.mixins import ScopedChangeList, TenantScopedAdminMixin, acting_user
from cot.cockpit.site import cockpit
from devices.admin.next_steps import next_steps
from devices.models import Alarm, Device, PayloadPurge
from devices.services import registry
from tenants import access
from tenants.models import Action

# Seconds between reloads of the purge pages while a purge is still going.
PROGRESS_REFRESH_SECONDS = 5


class AlarmChangeList(ScopedChangeList):
    """Names each listed alarm's device, read from the registry through the access layer."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        ids = {alarm.device_id for alarm in self.result_list}
        devices = Device.objects.restrict(request.user, Action.VIEW).in_bulk(ids)
        for alarm in self.result_list:
            alarm.device_row = devices.get(alarm.device_id)


@admin.register(Alarm, site=cockpit)
class AlarmAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Alarms of the devices the caller may see; acknowledged and cleared, never edited.

    The list is open to whoever may see devices at all (alarms follow their devices'
    rights), also before the first device or alarm exists.
    """

    listed_for = Device

    list_display = ("severity", "type", "device_link", "status", "count", "first_time", "last_time", "text")
    list_filter = ("severity", "status")
    search_fields = ("type", "text")
    ordering = ("-last_time", "-id")
    actions = ("acknowledge", "clear")
    fields = ("device_link", "type", "severity", "status", "text", "count", "first_time", "last_time", "updated_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # Routed to the telemetry database by cot.db_routers, then scoped like every row.
        return Alarm.objects.restrict(request.user, Action.VIEW).order_by(*self.ordering)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Any:
        alarm = super().get_object(request, object_id, from_field)
        alarm.device_row = Device.objects.restrict(request.user, Action.VIEW).filter(pk=alarm.device_id).first()
        return alarm

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AlarmChangeList

    @admin.display(description="device")
    def device_link(self, obj: Alarm) -> str:
        """The device's name, linking to its page (when the caller may see it)."""
        device = getattr(obj, "device_row", None)
        if device is None:
            return f"#{obj.device_id}"
        url = reverse(f"{self.admin_site.name}:devices_device_change", args=(device.pk,))
        return format_html('<a href="{}">{}</a>', url, device)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {
            **(extra_context or {}),
            "next_steps": next_steps(request, self.admin_site.name),
            "sees_devices": Device.objects.restrict(request.user, Action.VIEW).exists(),
        }
        return super().changelist_view(request, context)

    # Alarms change only through the acknowledge and clear actions (which call the
    # service), never through a form, although the access layer lets ``change`` reach them.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_status_permission(self, request: HttpRequest) -> bool:
        """Whoever may change some visible alarm (``change`` on its device's group)."""
        return self.rows(request, Action.CHANGE).exists()

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Alarm], status: str, what: str) -> None:
        """Apply ``status`` to every selected alarm in one transaction per store, or to none."""
        selected = list(queryset.values_list("pk", flat=True))
        changeable = set(self.rows(request, Action.CHANGE).filter(pk__in=selected).values_list("pk", flat=True))
        wrong = queryset.exclude(status__in=registry.ALARM_TRANSITIONS[status])
        if len(changeable) != len(selected):
            self.message_user(request, f"{what}: you may not change some of the selected alarms.", messages.ERROR)
            return
        wrong_rows = list(wrong[:5])
        if wrong_rows:
            names = ", ".join(f"{alarm.type} ({alarm.status.lower()})" for alarm in wrong_rows)
            self.message_user(
                request, f"{what}: {names} cannot be {what.lower()}d. Nothing was changed.", messages.ERROR
            )
            return
        actor = acting_user(request)
        try:
            registry.do_set_alarms_status(selected, status, actor=actor)
        except (ValidationError, PermissionDenied, Http404) as exc:
            report_refusal(self, request, exc, what)
            return
        self.message_user(request, f"{what}d {len(selected)} alarm(s).", messages.SUCCESS)

    @admin.action(description="Acknowledge", permissions=["status"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alarm]) -> None:
        """Acknowledge the selected active alarms (all or none)."""
        self._set_status(request, queryset, Alarm.Status.ACKNOWLEDGED, "Acknowledge")

    @admin.action(description="Clear", permissions=["status"])
    def clear(self, request: HttpRequest, queryset: QuerySet[Alarm]) -> None:
        """Clear the selected open alarms (all or none)."""
        self._set_status(request, queryset, Alarm.Status.CLEARED, "Clear")


@admin.register(PayloadPurge, site=cockpit)
class PayloadPurgeAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Read-only progress of payload purges started by decommissioning; reloads while one runs."""

    list_display = ("__str__", "status", "progress_bar", "deleted", "total", "device_count", "created_by", "created_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    fields = ("status", "progress_bar", "deleted", "total", "device_count", "created_by", "created_at", "finished_at")
    readonly_fields = fields

    @admin.display(description="progress")
    def progress_bar(self, obj: PayloadPurge) -> str:
        """A progress bar with the percentage next to it."""
        return format_html('<progress max="100" value="{0}">{0}%</progress> {0}%', obj.progress)

    @admin.display(description="devices")
    def device_count(self, obj: PayloadPurge) -> int:
        """How many devices the purge covers."""
        return len(obj.device_ids)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            # Purges follow decommissioning: the list is for whoever may decommission devices
            # (also before the first exists), and for anyone whose purges are listed in it.
            decommissions = access.may_view_model(request.user, Device, Action.DELETE)
            return decommissions or self.rows(request, Action.VIEW).exists()
        return super().has_view_permission(request, obj)

    def _refresh(self, rows: QuerySet[Any]) -> dict[str, Any]:
        going = rows.filter(status__in=[PayloadPurge.Status.QUEUED, PayloadPurge.Status.RUNNING]).exists()
        return {"refresh_seconds": PROGRESS_REFRESH_SECONDS if going else None}

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), **self._refresh(self.get_queryset(request))}
        return super().changelist_view(request, context)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        rows = self.get_queryset(request).filter(pk=object_id) if object_id.isdigit() else PayloadPurge.objects.none()
        context = {**(extra_context or {}), **self._refresh(rows)}
        return super().change_view(request, object_id, form_url, context)
