"""Cockpit pages for device types and registrations (expected devices), including CSV upload.

A registration's token (the administrator's or a generated one) is shown once: in the
message after adding one, or as a CSV download on the page that answers an upload.
"""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html

from cot.body_limits import accepts_uploads
from cot.cockpit.actions import report_refusal
from cot.cockpit.mixins import CreateOnlyAdminMixin, ServiceForm, TenantScopedAdminMixin, acting_user, count_per_row
from cot.cockpit.site import cockpit
from cot.spreadsheet import csv_lines
from devices.admin.next_steps import next_steps
from devices.models import Device, DeviceRegistration, DeviceType
from devices.services import registration, registry
from tenants import access
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
    """Expect one device; its registration token is the one typed here or a generated one."""

    registration_token = forms.CharField(
        required=False,
        max_length=registration.MAX_TOKEN_LENGTH,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="The secret the device presents when it registers. Leave it empty to have one generated "
        "(shown once, after saving). It is stored only as a hash.",
    )

    class Meta:
        model = DeviceRegistration
        fields = ("external_id", "type", "group")


class CsvUploadForm(forms.Form):
    """A CSV file of expected devices, read line by line from the upload (never whole into memory)."""

    file = forms.FileField(
        help_text="UTF-8 CSV; first line names the columns: external_id[,registration_token,type,group] "
        f"(type and group are ids; at most {registration.MAX_CSV_ROWS} lines). Lines without a token get a "
        "generated one. All lines are registered, or none.",
    )

    def clean_file(self) -> io.TextIOWrapper:
        upload = self.cleaned_data["file"]
        upload.seek(0)
        return io.TextIOWrapper(upload.file, encoding="utf-8-sig", newline="")


@admin.register(DeviceRegistration, site=cockpit)
class DeviceRegistrationAdmin(CreateOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Administrators expect devices one by one or from CSV, and accept them in bulk."""

    form = RegistrationForm
    list_display = (
        "external_id",
        "status",
        "type",
        "group",
        "device",
        "failed_attempts",
        "last_failed_at",
        "created_at",
        "accepted_at",
    )
    list_filter = ("status",)
    list_select_related = ("type", "group", "device")
    search_fields = ("external_id",)
    actions = ("accept",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("external_id", "registration_token", "type", "group")
        return self.list_display  # a registration's page shows what its row in the list shows

    def has_accept_permission(self, request: HttpRequest) -> bool:
        """The tenant's administrators (accepting lets a device collect a credential)."""
        return access.keeps_secrets(request.user)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        for row in registration.registrations_under_guessing(request.user)[:5]:
            self.message_user(
                request,
                f"{row.external_id}: {row.failed_attempts} wrong registration token(s), the last at "
                f"{row.last_failed_at:%Y-%m-%d %H:%M} UTC. Guesses are throttled; the right token still works.",
                messages.WARNING,
            )
        context = {**(extra_context or {}), "next_steps": next_steps(request, self.admin_site.name)}
        return super().changelist_view(request, context)

    def create_object(self, request: HttpRequest, form: Any) -> DeviceRegistration:
        data = form.cleaned_data
        issued = registration.do_create_registration(
            external_id=data["external_id"],
            registration_token=data["registration_token"] or None,
            type=data["type"],
            group=data["group"],
            actor=acting_user(request),
        )
        if issued.generated:
            messages.success(
                request,
                format_html(
                    "The registration token of {} is <code id='registration-token'>{}</code> — "
                    "copy it now, it is not shown again.",
                    issued.registration.external_id,
                    issued.token,
                ),
            )
        return issued.registration

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

    @accepts_uploads
    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Expect many devices from a CSV file: all lines or none, with an error per bad line."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CsvUploadForm(request.POST or None, request.FILES or None)
        line_errors: list[tuple[str, list[str]]] = []
        tokens_csv, expected = "", 0
        if request.method == "POST" and form.is_valid():
            try:
                issued = registration.do_bulk_register(form.cleaned_data["file"], actor=acting_user(request))
            except (ValidationError, UnicodeDecodeError) as exc:
                line_errors = _line_errors(exc)
            else:
                # Answered here, not after a redirect: the tokens exist only in this response.
                rows = (
                    {"external_id": one.registration.external_id, "registration_token": one.token} for one in issued
                )
                tokens_csv = "".join(csv_lines(("external_id", "registration_token"), rows))
                expected = len(issued)
                form = CsvUploadForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Expect devices from CSV",
            "opts": self.opts,
            "form": form,
            "line_errors": line_errors,
            "tokens_csv": tokens_csv,
            "expected": expected,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/devices/deviceregistration/upload.html", context)


def _registration_guess_notices(request: HttpRequest) -> list[str]:
    """For administrators: registrations that received wrong tokens lately (someone may be guessing)."""
    count = registration.registrations_under_guessing(request.user).count()
    if not count:
        return []
    return [
        f"{count} expected device(s) received wrong registration tokens in the last 24 hours; "
        "see Device registrations. Guesses are throttled; the right tokens still work."
    ]


cockpit.register_notices(_registration_guess_notices)


def _line_errors(exc: ValidationError | UnicodeDecodeError) -> list[tuple[str, list[str]]]:
    """``[("line 3", [messages…]), …]`` from the service's error, file-level errors first."""
    if isinstance(exc, UnicodeDecodeError):
        return [("file", ["The file is not UTF-8 text."])]
    if not hasattr(exc, "error_dict"):
        return [("file", exc.messages)]
    errors = [(key, ValidationError(value).messages) for key, value in exc.error_dict.items()]

    def order(item: tuple[str, list[str]]) -> tuple[int, int]:
        key = item[0]
        number = key.removeprefix("line ")
        return (1, int(number)) if number.isdigit() else (0, 0)

    return sorted(errors, key=order)
