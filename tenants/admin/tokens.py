"""API tokens in the cockpit: created for the requesting user (secret shown once) and revoked."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import CreateOnlyAdminMixin, ServiceForm, TenantScopedAdminMixin, acting_user
from cot.cockpit.site import cockpit
from tenants import services
from tenants.models import Action, ApiToken


class ApiTokenForm(ServiceForm):
    """Name, scope and lifetime of a new token; its owner is always the requesting user."""

    days = forms.IntegerField(
        min_value=1, required=False, help_text="Lifetime in days; empty for the default. Your tenant caps it."
    )

    class Meta:
        model = ApiToken
        fields = ("name", "scope")


@admin.register(ApiToken, site=cockpit)
class ApiTokenAdmin(CreateOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Tokens are created for the requesting user (secret shown once) and revoked, never edited."""

    form = ApiTokenForm
    list_display = ("name", "owner", "scope", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("scope", ("user", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("name", "prefix")
    actions = ("revoke",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("name", "scope", "days")
        return ("name", "owner", "scope", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")

    @admin.display(description="owner", ordering="user__email")
    def owner(self, obj: ApiToken) -> str:
        """The e-mail address of the token's owner."""
        return obj.user.email

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Whoever may revoke at least one visible token (owners: theirs; administrators: all)."""
        return self.rows(request, Action.DELETE).exists()

    def create_object(self, request: HttpRequest, form: Any) -> ApiToken:
        data = form.cleaned_data
        actor = acting_user(request)
        token, secret = services.do_create_api_token(
            user=actor, name=data["name"], scope=data["scope"], days=data["days"], actor=actor
        )
        messages.success(request, f"Your new token “{token.name}” is {secret} — copy it now, it is not shown again.")
        return token

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        """Revoke each selected token the caller may revoke."""

        def step(token: ApiToken) -> None:
            services.do_revoke_api_token(token, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Revoked")
