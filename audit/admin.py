"""The audit trail in the cockpit: read-only, filterable, exportable as CSV or JSON."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path
from django.utils import timezone

from audit import dashboard
from audit.export import EXPORT_FORMATS, ExportUnavailable, export_response
from audit.models import AuditEntry
from cot.cockpit.mixins import TenantScopedAdminMixin
from cot.cockpit.site import cockpit

# The families of events the trail records (the part of ``event`` before the dot).
EVENT_FAMILIES = (
    ("auth", "logins and sessions"),
    ("2fa", "two-factor"),
    ("user", "users"),
    ("role", "roles"),
    ("rights", "rights"),
    ("token", "API tokens"),
    ("tenant", "tenant"),
    ("model", "record changes"),
)


class EventFamilyFilter(admin.SimpleListFilter):
    """Filter by event prefix, e.g. every ``token.*`` event."""

    title = "event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> tuple[tuple[str, str], ...]:
        return EVENT_FAMILIES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(event__startswith=f"{value}.") if value else queryset


@admin.register(AuditEntry, site=cockpit)
class AuditEntryAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Administrators read their tenant's trail; nobody adds, changes or deletes entries.

    The access layer makes the trail view-only (``tenants.access``: no add rule, view the
    only action), so the mixin's permission methods refuse the rest.
    """

    list_display = ("when", "event", "actor_label", "content_type", "object_repr", "remote_addr")
    list_filter = (
        EventFamilyFilter,
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("timestamp", admin.DateFieldListFilter),
        ("content_type", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("event", "object_repr", "actor_label")
    list_select_related = ("content_type",)
    fields = (
        "when",
        "event",
        "actor_kind",
        "actor_label",
        "content_type",
        "object_pk",
        "object_repr",
        "changes",
        "additional_data",
        "remote_addr",
        "cid",
        "seq",
        "prev_hash",
        "entry_hash",
    )
    readonly_fields = fields

    @admin.display(description="time", ordering="timestamp")
    def when(self, obj: AuditEntry) -> str:
        """To the second, with the time zone: entries of one request or attack lie seconds apart."""
        return timezone.localtime(obj.timestamp).strftime("%Y-%m-%d %H:%M:%S %Z")

    def get_urls(self) -> list[URLPattern]:
        export = path("export/<str:fmt>/", self.admin_site.admin_view(self.export_view), name="audit_auditentry_export")
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        """Stream the changelist's current selection (its filters and search) as CSV or JSON."""
        if fmt not in EXPORT_FORMATS:
            raise Http404("Unknown export format.")
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except (IncorrectLookupParameters, DisallowedModelAdminLookup):
            return HttpResponseBadRequest("Unknown filter.")
        try:
            return export_response(changelist.queryset, fmt, "audit-trail")
        except ExportUnavailable as exc:
            return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")


dashboard.register()
