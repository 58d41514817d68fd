"""Signing keys in the cockpit: administrators register Ed25519 public keys and revoke them.

A key row is never edited or deleted (what it signed stays released and points at it),
so the page is create-only and revoking is an action.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import CreateOnlyAdminMixin, ServiceForm, TenantScopedAdminMixin, acting_user
from cot.cockpit.site import cockpit
from firmware import services
from firmware.models import SigningKey
from tenants.models import Action


class SigningKeyForm(ServiceForm):
    """A name and the public key as pasted (PEM or base64 of the raw 32 bytes)."""

    public_key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        help_text="A PEM “PUBLIC KEY” (what openssl pkey -pubout prints) or the base64 of the raw 32-byte "
        "Ed25519 key. Never paste a private key.",
    )

    class Meta:
        model = SigningKey
        # Not public_key: the pasted PEM is longer than the base64 the row stores, so the
        # model must not check it; the service parses it and says what is wrong with it.
        fields = ("name",)


@admin.register(SigningKey, site=cockpit)
class SigningKeyAdmin(CreateOnlyAdminMixin, TenantScopedAdminMixin, admin.ModelAdmin):
    """Everyone in the tenant reads the keys; administrators add and revoke them."""

    form = SigningKeyForm
    list_display = ("name", "key_id", "created_at", "revoked_at")
    search_fields = ("name", "key_id")
    actions = ("revoke",)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            # The model form covers the name only (see SigningKeyForm.Meta); the key is its own field.
            kwargs["fields"] = SigningKeyForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("name", "public_key")
        return ("name", "key_id", "public_key", "created_at", "revoked_at")

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Whoever may revoke a visible key: the tenant's administrators, never support."""
        return self.rows(request, Action.DELETE).exists()

    def create_object(self, request: HttpRequest, form: Any) -> SigningKey:
        data = form.cleaned_data
        return services.do_add_signing_key(name=data["name"], public_key=data["public_key"], actor=acting_user(request))

    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        """Revoke each selected key: new releases signed by it are refused from now on."""

        def step(key: SigningKey) -> None:
            services.do_revoke_signing_key(key, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Revoked")
