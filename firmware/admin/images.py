"""Firmware images in the cockpit: upload (hashed while streamed), change a draft, release, withdraw, delete.

The add page is the upload. Its body may be far larger than other cockpit pages accept,
so the add URL is routed to ``upload_view``: marked for ``cot.body_limits`` with
``COT_MAX_FIRMWARE_BYTES``, ``csrf_exempt`` so the CSRF check does not parse the body
with Django's default upload handlers, then installing ``firmware.uploads``'
hashing handler with the tenant's limit and only then running the admin's add view
under ``csrf_protect`` (``firmware.uploads`` explains why in this order). The service
gets the server's own hash of the bytes; a client's expected hash is only compared.

A draft's page carries a Release section: the manifest to sign, with a copy button, and
a form posting the signature to ``<id>/release/``.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html_join
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from cot.body_limits import accepts_uploads, too_large
from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import (
    ServiceForm,
    TenantScopedAdminMixin,
    acting_user,
    changed_values,
    visible_rows,
)
from cot.cockpit.site import cockpit
from devices.models import DeviceType
from firmware import selectors, services, uploads
from firmware.models import FirmwareImage
from firmware.services.images import DRAFT_FIELDS
from tenants import access
from tenants.models import Action

# The service names the client's hash "sha256"; on the form that field is the expected one.
_FORM_NAMES = {"sha256": "expected_sha256"}


class FirmwareUploadForm(ServiceForm):
    """A new image: the file, its version, the device types it fits, and optionally its expected hash."""

    file = forms.FileField(help_text="Streamed to disk; the server computes its SHA-256 and size as it arrives.")
    device_types = forms.ModelMultipleChoiceField(
        queryset=DeviceType.objects.none(), help_text="Every device type of yours this image fits."
    )
    expected_sha256 = forms.RegexField(
        label="expected SHA-256",
        regex=r"^[0-9a-fA-F]{64}\Z",
        error_messages={"invalid": "Give the 64 hexadecimal digits that sha256sum prints."},
        required=False,
        strip=True,
        help_text="Optional: the file's SHA-256 as you computed it (sha256sum). If the bytes that arrive hash "
        "differently, nothing is stored.",
    )
    # Set per request by FirmwareImageAdmin.get_form: the caller's own device types.
    device_type_choices: QuerySet[DeviceType] = DeviceType.objects.none()

    class Meta:
        model = FirmwareImage
        fields = ("version", "security_version", "release_notes", "expires_at")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = self.fields["device_types"]
        assert isinstance(choices, forms.ModelMultipleChoiceField)
        choices.queryset = self.device_type_choices

    def clean_expected_sha256(self) -> str:
        return str(self.cleaned_data.get("expected_sha256") or "").lower()


class FirmwareDraftForm(ServiceForm):
    """What a draft may still change; a released or withdrawn image's page is read-only."""

    class Meta:
        model = FirmwareImage
        fields = DRAFT_FIELDS


class ReleaseForm(forms.Form):
    """The signature of the manifest shown on the page, and the id of the key that made it."""

    signature = forms.CharField(
        required=False, max_length=100, help_text="Base64 of the Ed25519 signature of the manifest above."
    )
    key_id = forms.CharField(
        label="key id", required=False, max_length=16, help_text="The id of one of your active signing keys."
    )


def _renamed(error: ValidationError) -> ValidationError:
    """The service's error with its field names as the upload form calls them."""
    if not hasattr(error, "error_dict"):
        return error
    return ValidationError({_FORM_NAMES.get(name, name): errors for name, errors in error.error_dict.items()})


@admin.register(FirmwareImage, site=cockpit)
class FirmwareImageAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Everyone in the tenant reads the catalogue; administrators upload, change drafts, release, withdraw, delete."""

    change_form_template = "admin/firmware/firmwareimage/change_form.html"
    list_display = ("version", "types", "security_version", "size", "status", "signed_by_key", "created_at")
    list_filter = ("status",)
    list_select_related = ("signed_by",)
    search_fields = ("version", "sha256")
    actions = ("withdraw",)
    readonly_shown = (
        "version",
        "types",
        "security_version",
        "release_notes",
        "expires_at",
        "size",
        "sha256",
        "status",
        "signed_by_key",
        "created_at",
        "released_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[FirmwareImage]:
        return super().get_queryset(request).prefetch_related("device_types")

    @admin.display(description="device types")
    def types(self, obj: FirmwareImage) -> str:
        """The device types the image fits (all of them the caller's tenant's)."""
        return format_html_join(", ", "{}", ((str(t),) for t in obj.device_types.all())) or "—"

    @admin.display(description="signed by key", ordering="signed_by__key_id")
    def signed_by_key(self, obj: FirmwareImage) -> str:
        """The key id of the signature the image was released with, if any."""
        return obj.signed_by.key_id if obj.signed_by is not None else "—"

    # --- pages -----------------------------------------------------------------------------

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = FirmwareDraftForm if obj is not None else FirmwareUploadForm
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            # A fresh class per request (get_form builds one), so this reaches this request only.
            form.device_type_choices = visible_rows(DeviceType, request.user)
        return form

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return (
                "file",
                "version",
                "security_version",
                "device_types",
                "release_notes",
                "expires_at",
                "expected_sha256",
            )
        return self.readonly_shown

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        if obj.status == FirmwareImage.Status.DRAFT and self.has_change_permission(request, obj):
            return [name for name in self.readonly_shown if name not in DRAFT_FIELDS]
        return self.readonly_shown

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Released and withdrawn images never change: their pages are view-only.
        if obj is not None and obj.status != FirmwareImage.Status.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A released image is withdrawn first (the service refuses it too).
        if obj is not None and obj.status == FirmwareImage.Status.RELEASED:
            return False
        return super().has_delete_permission(request, obj)

    def has_withdraw_permission(self, request: HttpRequest) -> bool:
        """Whoever may change a visible image: the tenant's administrators, never support."""
        return self.rows(request, Action.CHANGE).exists()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        image = self.get_object(request, object_id)
        if image.status == FirmwareImage.Status.DRAFT and self.has_change_permission(request, image):
            context["manifest_json"] = json.dumps(selectors.manifest_for(image), indent=2)
            context["release_form"] = ReleaseForm()
            context["release_url"] = reverse(f"{self.admin_site.name}:firmware_firmwareimage_release", args=[image.pk])
        return super().change_view(request, object_id, form_url, context)

    # --- the upload ------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        site = self.admin_site
        return [
            # Before Django's own add/: this one takes the upload (see the module docstring).
            path("add/", site.admin_view(self.upload_view), name="firmware_firmwareimage_add"),
            path(
                "<path:object_id>/release/",
                site.admin_view(self.release_view),
                name="firmware_firmwareimage_release",
            ),
            *super().get_urls(),
        ]

    @accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")
    @csrf_exempt
    def upload_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        """The add page: the hashing upload handler first, then the CSRF check, then the admin's add view."""
        if request.method == "POST":
            if not self.has_add_permission(request):
                raise PermissionDenied
            tenant = access.require_caller(request.user).tenant
            limit = min(int(settings.COT_MAX_FIRMWARE_BYTES), selectors.policy_for(tenant).max_image_bytes)
            try:
                uploads.check_declared_length(request, limit)
                uploads.use_hashing_uploads(request, limit)
                return csrf_protect(self.add_view)(request, form_url, extra_context)
            except uploads.FileTooLarge as exc:
                return too_large(request, exc.limit)
        return csrf_protect(self.add_view)(request, form_url, extra_context)

    def create_object(self, request: HttpRequest, form: Any) -> FirmwareImage:
        data = form.cleaned_data
        upload = data["file"]
        sha256 = getattr(upload, "sha256", None)
        if sha256 is None:  # pragma: no cover - upload_view always installs the hashing handler
            raise ValidationError({"file": "The upload was not hashed; try again."})
        try:
            return services.do_upload_firmware_image(
                file=upload,
                sha256=sha256,
                version=data["version"],
                device_types=list(data["device_types"]),
                security_version=data["security_version"],
                release_notes=data["release_notes"],
                expires_at=data["expires_at"],
                expected_sha256=data["expected_sha256"] or None,
                actor=acting_user(request),
            )
        except ValidationError as exc:
            raise _renamed(exc) from None

    def update_object(self, request: HttpRequest, obj: FirmwareImage, form: Any) -> None:
        services.do_update_firmware_image(obj, changed_values(form, DRAFT_FIELDS), actor=acting_user(request))

    def delete_object(self, request: HttpRequest, obj: FirmwareImage) -> None:
        services.do_delete_firmware_image(obj, actor=acting_user(request))

    # --- release and withdraw ----------------------------------------------------------------

    def release_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Release a draft with the signature posted from its page; the outcome is a message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        image = self.get_object(request, object_id)
        if not self.has_change_permission(request, image):
            raise PermissionDenied
        change_url = reverse(f"{self.admin_site.name}:firmware_firmwareimage_change", args=[image.pk])
        form = ReleaseForm(request.POST)
        if not form.is_valid():
            self.message_user(request, "Release: the signature or key id is malformed.", messages.ERROR)
            return HttpResponseRedirect(change_url)
        try:
            services.do_release_firmware_image(
                image,
                signature=form.cleaned_data["signature"].strip(),
                key_id=form.cleaned_data["key_id"].strip(),
                actor=acting_user(request),
            )
        except ValidationError as exc:
            self.message_user(request, f"Not released: {' '.join(exc.messages)}", messages.ERROR)
        else:
            self.message_user(request, f"Released {image.version}.", messages.SUCCESS)
        return HttpResponseRedirect(change_url)

    @admin.action(description="Withdraw selected images", permissions=["withdraw"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[FirmwareImage]) -> None:
        """Stop offering each selected released image; drafts and withdrawn ones are refused one by one."""

        def step(image: FirmwareImage) -> None:
            services.do_withdraw_firmware_image(image, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Withdrawn")
