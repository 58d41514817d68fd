"""Cockpit pages for support grants: create (link shown once), list, revoke, and the activity under each."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from audit.models import AuditEntry
from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import CreateOnlyAdminMixin, ServiceForm, TenantScopedAdminMixin, acting_user, count_per_row
from cot.cockpit.site import cockpit
from tenants import grant_scopes, services
from tenants.models import Action, SupportGrant


class SupportGrantForm(ServiceForm):
    """What the administrator consents to: duration (≤ 24 h), scope, reason, optionally the engineer.

    The duration starts empty: the administrator picks it, rather than accepting the longest.
    """

    class Meta:
        model = SupportGrant
        fields = ("duration_hours", "scope", "device_groups", "reason", "engineer_email")
        labels = {"duration_hours": "Duration (hours)", "device_groups": "Only these device groups"}


@admin.register(SupportGrant, site=cockpit)
class SupportGrantAdmin(CreateOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Customer administrators grant platform support time-limited access and watch what it does."""

    form = SupportGrantForm
    list_display = ("__str__", "scope", "status_label", "engineer_label", "created_by", "created_at", "expires_at")
    list_select_related = ("engineer", "created_by")
    list_filter = ("scope",)
    search_fields = ("reason", "engineer_email")
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("duration_hours", "scope", "device_groups", "reason", "engineer_email")
        return (
            "reason",
            "scope",
            "device_groups_label",
            "status_label",
            "engineer_label",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "activity",
        )

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "device_groups":
            # The groups the administrator sees (tenants.grant_scopes), ticked; none: the whole tenant.
            return forms.TypedMultipleChoiceField(
                choices=grant_scopes.device_group_choices(request.user),
                coerce=int,
                required=False,
                widget=forms.CheckboxSelectMultiple,
                label="Only these device groups",
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="device groups")
    def device_groups_label(self, obj: SupportGrant) -> str:
        """The groups the grant is limited to, by name (as its creator, an administrator, sees them)."""
        if not obj.device_groups:
            return "the whole tenant"
        return ", ".join(grant_scopes.device_group_names(obj.created_by, obj.device_groups)) or "groups since deleted"

    @admin.display(description="status")
    def status_label(self, obj: SupportGrant) -> str:
        """Pending until the link is opened, then active until it expires or is revoked."""
        return obj.status

    @admin.display(description="engineer")
    def engineer_label(self, obj: SupportGrant) -> str:
        """The engineer bound to the grant, or the one it is reserved for."""
        if obj.engineer_id:
            return obj.engineer.email  # type: ignore[union-attr]
        return f"(for {obj.engineer_email})" if obj.engineer_email else "(not opened yet)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The activity count comes through the access layer, in the same query as the grant.
        recorded = AuditEntry.objects.restrict(request.user, Action.VIEW)
        return super().get_queryset(request).annotate(activity_total=count_per_row(recorded, "support_grant_id"))

    @admin.display(description="activity")
    def activity(self, obj: SupportGrant) -> str:
        """A link to the grant's activity page, with how many actions were recorded under it."""
        url = reverse("cockpit:tenants_supportgrant_activity", args=(obj.pk,))
        count = int(getattr(obj, "activity_total", 0))
        return format_html('<a href="{}" id="grant-activity">{} recorded actions</a>', url, count)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Administrators revoke their tenant's grants."""
        return self.rows(request, Action.CHANGE).exists()

    def create_object(self, request: HttpRequest, form: Any) -> SupportGrant:
        data = form.cleaned_data
        grant, link = services.do_create_support_grant(
            actor=acting_user(request),
            duration_hours=data["duration_hours"],
            scope=data["scope"],
            reason=data["reason"],
            engineer_email=data.get("engineer_email") or "",
            device_groups=data.get("device_groups") or [],
        )
        messages.success(
            request,
            format_html(
                'Hand this link to platform support; it is shown only now: <code id="support-link">{}</code> '
                '<button type="button" class="cockpit-copy" data-copy="#support-link" hidden>Copy link</button>',
                link,
            ),
        )
        return grant

    @admin.action(description="Revoke selected grants now", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[SupportGrant]) -> None:
        """Revoke each selected grant; the engineer's next request is refused."""

        def step(grant: SupportGrant) -> None:
            services.do_revoke_support_grant(grant, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Revoked")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.activity_view)
        return [path("<path:object_id>/activity/", view, name="tenants_supportgrant_activity"), *super().get_urls()]

    def activity_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Everything the engineer did under one grant, newest first."""
        grant = self.get_object(request, object_id)
        entries = (
            AuditEntry.objects.restrict(request.user, Action.VIEW)
            .filter(support_grant_id=grant.pk)
            .select_related("content_type")
            .order_by("-seq")[:1000]
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "grant": grant,
            "entries": entries,
            "title": f"Activity under {grant}",
        }
        return TemplateResponse(request, "admin/tenants/supportgrant/activity.html", context)
