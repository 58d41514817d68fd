"""Cockpit pages for device types and registrations (expected devices), including CSV upload."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from devices.admin_actions import report_refusal
from devices.models import Device, DeviceRegistration, DeviceType
from devices.services import registration, registry
from tenants.admin_mixins import CreateOnlyAdminMixin, ServiceForm, TenantScopedAdminMixin, acting_user, count_per_row
from tenants.admin_site import cockpit
from tenants.models import Action

# --- device types --------------------------------------------------------------------------


class DeviceTypeForm(ServiceForm):
    """A new device type: maker, model, certification and heartbeat interval."""

    class Meta:
        model = DeviceType
        fields = ("manufacturer", "model", "certified", "certification_notes", "heartbeat_interval")


@admin.register(DeviceType, site=cockpit)
class DeviceTypeAdmin(CreateOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Everyone in the tenant reads device types; administrators add them (no service changes them)."""

    form = DeviceTypeForm
    list_display = ("manufacturer", "model", "certified", "heartbeat_interval", "device_count")
    list_filter = ("certified",)
    search_fields = ("manufacturer", "model")
    fields = ("manufacturer", "model", "certified", "certification_notes", "heartbeat_interval")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        visible = Device.objects.restrict(request.user, Action.VIEW)
        return super().get_queryset(request).annotate(devices_total=count_per_row(visible, "type"))

    @admin.display(description="devices", ordering="devices_total")
    def device_count(self, obj: DeviceType) -> int:
        """How many devices the caller can see are of this type."""
        return int(getattr(obj, "devices_total", 0))

    def create_object(self, request: HttpRequest, form: Any) -> DeviceType:
        data = form.cleaned_data
        return registry.do_create_device_type(
            manufacturer=data["manufacturer"],
            model=data["model"],
            certified=data["certified"],
            certification_notes=data["certification_notes"],
            heartbeat_interval=data["heartbeat_interval"],
            actor=acting_user(request),
        )


# --- registrations -------------------------------------------------------------------------


class RegistrationForm(ServiceForm):
    """Expect one device; the optional registration token is write-only (stored as a hash)."""

    registration_token = forms.CharField(
        required=False,
        max_length=200,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Optional secret the device must present when it registers. It is never shown again.",
    )

    class Meta:
        model = DeviceRegistration
        fields = ("external_id", "type", "group")


class CsvUploadForm(forms.Form):
    """A CSV file of expected devices."""

    file = forms.FileField(
        help_text="UTF-8 CSV; first line names the columns: external_id[,registration_token,type,group] "
        "(type and group are ids). All lines are registered, or none.",
    )

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        try:
            text: str = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text.") from None
        return text


@admin.register(DeviceRegistration, site=cockpit)
class DeviceRegistrationAdmin(CreateOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Administrators expect devices one by one or from CSV, and accept them in bulk."""

    form = RegistrationForm
    list_display = ("external_id", "status", "type", "group", "device", "failed_attempts", "created_at", "accepted_at")
    list_filter = ("status",)
    list_select_related = ("type", "group", "device")
    search_fields = ("external_id",)
    actions = ("accept",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("external_id", "registration_token", "type", "group")
        return ("external_id", "status", "type", "group", "device", "failed_attempts", "created_at", "accepted_at")

    def has_accept_permission(self, request: HttpRequest) -> bool:
        """Whoever may change registrations (administrators)."""
        return self.rows(request, Action.CHANGE).exists()

    def create_object(self, request: HttpRequest, form: Any) -> DeviceRegistration:
        data = form.cleaned_data
        return registration.do_create_registration(
            external_id=data["external_id"],
            registration_token=data["registration_token"] or None,
            type=data["type"],
            group=data["group"],
            actor=acting_user(request),
        )

    @admin.action(description="Accept", permissions=["accept"])
    def accept(self, request: HttpRequest, queryset: QuerySet[DeviceRegistration]) -> None:
        """Accept the selected pending registrations in one step; the others are left as they are."""
        ids = list(queryset.values_list("pk", flat=True))
        try:
            accepted = registration.do_accept_registrations(ids, actor=acting_user(request))
        except (ValidationError, PermissionDenied) as exc:
            report_refusal(self, request, exc, "Accept")
            return
        skipped = len(ids) - accepted
        note = f" {skipped} were not pending and stay as they are." if skipped else ""
        self.message_user(request, f"Accepted {accepted} registration(s).{note}", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="devices_deviceregistration_upload")
        return [upload, *super().get_urls()]

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Expect many devices from a CSV file: all lines or none, with an error per bad line."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CsvUploadForm(request.POST or None, request.FILES or None)
        line_errors: list[tuple[str, list[str]]] = []
        if request.method == "POST" and form.is_valid():
            try:
                created = registration.do_bulk_register(form.cleaned_data["file"], actor=acting_user(request))
            except ValidationError as exc:
                line_errors = _line_errors(exc)
            else:
                self.message_user(request, f"{len(created)} device(s) expected.", messages.SUCCESS)
                url = reverse(f"{self.admin_site.name}:devices_deviceregistration_changelist")
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Expect devices from CSV",
            "opts": self.opts,
            "form": form,
            "line_errors": line_errors,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/devices/deviceregistration/upload.html", context)


def _line_errors(exc: ValidationError) -> list[tuple[str, list[str]]]:
    """``[("line 3", [messages…]), …]`` from the service's error, file-level errors first."""
    if not hasattr(exc, "error_dict"):
        return [("file", exc.messages)]
    errors = [(key, ValidationError(value).messages) for key, value in exc.error_dict.items()]

    def order(item: tuple[str, list[str]]) -> tuple[int, int]:
        key = item[0]
        number = key.removeprefix("line ")
        return (1, int(number)) if number.isdigit() else (0, 0)

    return sorted(errors, key=order)
