"""The device page: what ``DeviceAdmin``'s change view shows beyond the form, and its buttons.

A downsampled measurement chart (inline SVG), the device's latest values, alarms,
events, operations and audit entries as the caller may see them (all but the chart
refreshed in place while the page is open: ``live_panels_view``), and the sections higher apps register
(``devices.admin.sections``). The buttons (acknowledge or clear an
alarm, create or cancel an operation, unblock) post to small views on the admin; each
looks the device up through the access layer first (404 out of reach, 403 when it may
only be viewed) and then calls its ``devices.services.registry`` function.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from cot.cockpit.mixins import acting_user
from devices import selectors
from devices.admin.sections import device_sections
from devices.charts import DEFAULT_RANGE, RANGES, build_charts
from devices.models import Alarm, Device, Operation
from devices.services import registry
from tenants import access
from tenants.models import Action
from tenants.support_middleware import mark_live_refresh

if TYPE_CHECKING:
    from django.contrib import admin

    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class OperationForm(forms.Form):
    """A new operation for one device: its kind and JSON parameters (an object; empty for none)."""

    kind = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"placeholder": "restart"}))
    parameters = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 40, "placeholder": '{"delay": 5}'})
    )

    def clean_parameters(self) -> dict[str, Any]:
        text = self.cleaned_data.get("parameters", "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ValidationError("Parameters are not valid JSON.") from None
        if not isinstance(value, dict):
            raise ValidationError('Parameters are a JSON object, for example {"delay": 5}.')
        return value


class DevicePageMixin(_AdminBase):
    """Put before ``TenantScopedAdminMixin`` in ``DeviceAdmin``'s bases."""

    def visible_device(self, request: HttpRequest, object_id: str) -> Device:
        """The device ``object_id`` if the caller may see it; 404 alike for missing and out of reach."""
        # TenantScopedAdminMixin.get_object answers missing and unreachable alike with a 404.
        return cast(Device, self.get_object(request, unquote(object_id)))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        device = self.visible_device(request, object_id)
        context = {**(extra_context or {}), **self.device_page_context(request, device)}
        return super().change_view(request, object_id, form_url, context)

    def device_page_context(self, request: HttpRequest, device: Device) -> dict[str, Any]:
        """The chart and the live part (``device_panels_context``) of ``device`` as the caller may see them."""
        user = acting_user(request)
        chosen = request.GET.get("range", DEFAULT_RANGE)
        chosen = chosen if chosen in RANGES else DEFAULT_RANGE
        until = timezone.now()
        since = until - RANGES[chosen].length
        series = selectors.measurement_series(user, device, since=since, until=until, buckets=RANGES[chosen].buckets)
        return {
            "charts": build_charts(series, since, until),
            "chart_range": chosen,
            "chart_ranges": [(key, one.label) for key, one in RANGES.items()],
            "chart_since": since,
            "chart_until": until,
            **self.device_panels_context(request, device),
        }

    def device_panels_context(self, request: HttpRequest, device: Device) -> dict[str, Any]:
        """What the page's live part (``panels.html``) shows: everything below the form but the chart."""
        user = acting_user(request)
        return {
            "latest_values": selectors.latest_values(user, device),
            "alarms": selectors.recent_alarms(user, device),
            "events": selectors.recent_events(user, device),
            "operations": [
                {"row": operation, "parameters": json.dumps(operation.parameters, sort_keys=True)}
                for operation in selectors.recent_operations(user, device)
            ],
            "audit_entries": selectors.device_audit_entries(user, device),
            "operation_form": OperationForm(),
            "device": device,
            # Unblocking makes the device's credential work again: administrators only.
            "may_unblock": access.keeps_secrets(user),
            # What apps above devices add (firmware history, …), see devices.admin.sections.
            "device_sections": device_sections(request, device),
        }

    def live_panels_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The page's live part alone, for its periodic refresh (htmx); 404 alike for missing and out of reach."""
        mark_live_refresh(request)
        device = self.visible_device(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            **self.device_panels_context(request, device),
            "opts": self.opts,
            "has_change_permission": self.has_change_permission(request, device),
        }
        return TemplateResponse(request, "admin/devices/device/panels.html", context)

    def get_urls(self) -> list[URLPattern]:
        def view(func: Any, suffix: str, route: str) -> URLPattern:
            return path(route, self.admin_site.admin_view(func), name=f"devices_device_{suffix}")

        return [
            view(self.alarm_status_view, "alarm_status", "<path:object_id>/alarms/<int:alarm_id>/<str:status>/"),
            view(self.create_operation_view, "operation_create", "<path:object_id>/operations/"),
            view(
                self.cancel_operation_view, "operation_cancel", "<path:object_id>/operations/<int:operation_id>/cancel/"
            ),
            view(self.unblock_view, "unblock", "<path:object_id>/unblock/"),
            view(self.live_panels_view, "live", "<path:object_id>/live/"),
            *super().get_urls(),
        ]

    def _changeable(self, request: HttpRequest, object_id: str) -> Device:
        """The device for a page button: 404 out of reach, 403 visible but not changeable."""
        device = self.visible_device(request, object_id)
        if not self.has_change_permission(request, device):
            raise PermissionDenied
        return device

    def _back(self, device: Device) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse(f"{self.admin_site.name}:devices_device_change", args=(device.pk,)))

    def alarm_status_view(self, request: HttpRequest, object_id: str, alarm_id: int, status: str) -> HttpResponse:
        """Acknowledge or clear one of the device's alarms."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        device = self._changeable(request, object_id)
        alarms = Alarm.objects.restrict(request.user, Action.VIEW)
        if status not in registry.ALARM_TRANSITIONS or not alarms.filter(pk=alarm_id, device_id=device.pk).exists():
            raise Http404("No alarm matches the given query.")
        try:
            registry.do_set_alarm_status(alarm_id, status, actor=acting_user(request))
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, f"Alarm {status.lower()}.", messages.SUCCESS)
        return self._back(device)

    def create_operation_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Queue an operation (kind and JSON parameters) for the device."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        device = self._changeable(request, object_id)
        form = OperationForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(f"{name}: {' '.join(str(e) for e in errs)}" for name, errs in form.errors.items())
            self.message_user(request, f"No operation created — {errors}", messages.ERROR)
            return self._back(device)
        try:
            operation = registry.do_create_operation(
                device,
                kind=form.cleaned_data["kind"],
                parameters=form.cleaned_data["parameters"],
                actor=acting_user(request),
            )
        except ValidationError as exc:
            self.message_user(request, f"No operation created — {' '.join(exc.messages)}", messages.ERROR)
        else:
            self.message_user(request, f"Operation “{operation.kind}” queued.", messages.SUCCESS)
        return self._back(device)

    def cancel_operation_view(self, request: HttpRequest, object_id: str, operation_id: int) -> HttpResponse:
        """Cancel one of the device's pending operations."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        device = self._changeable(request, object_id)
        operation = Operation.objects.restrict(request.user, Action.VIEW).filter(pk=operation_id, device=device).first()
        if operation is None:
            raise Http404("No operation matches the given query.")
        try:
            registry.do_cancel_operation(operation, actor=acting_user(request))
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, f"Operation “{operation.kind}” cancelled.", messages.SUCCESS)
        return self._back(device)

    def unblock_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Let a blocked device talk again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        device = self._changeable(request, object_id)
        try:
            registry.do_unblock_device(device, actor=acting_user(request))
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, "Device unblocked.", messages.SUCCESS)
        return self._back(device)
