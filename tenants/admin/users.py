"""Users in the cockpit: administrators add, change and deactivate them and reset their second factor."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest

from cot.cockpit.actions import run_for_each
from cot.cockpit.mixins import ServiceForm, TenantScopedAdminMixin, acting_user, changed_values
from cot.cockpit.site import cockpit
from tenants import services, two_factor
from tenants.models import User


class UserChangeForm(ServiceForm):
    """Name, role and active flag; e-mail and password are not changed here."""

    class Meta:
        model = User
        fields = ("full_name", "role", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "role" in self.fields:
            self.fields["role"].required = True


class UserAddForm(UserChangeForm):
    """A new user with an initial password; ``tenants.services`` validates its strength."""

    password = forms.CharField(label="Initial password", strip=False, widget=forms.PasswordInput)
    password_again = forms.CharField(label="Initial password (again)", strip=False, widget=forms.PasswordInput)

    class Meta:
        model = User
        fields = ("email", "full_name", "role")

    def validate_unique(self) -> None:
        # The service decides about taken addresses: one answer whichever tenant holds one, audited.
        return None

    def clean_password_again(self) -> str:
        again: str = self.cleaned_data["password_again"]
        if again != self.cleaned_data.get("password"):
            raise ValidationError("The two passwords differ.")
        return again


@admin.register(User, site=cockpit)
class UserAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Administrators manage their tenant's users; users are deactivated, never deleted."""

    list_display = ("email", "full_name", "role", "is_active", "two_factor_enabled")
    list_filter = (("role", admin.RelatedOnlyFieldListFilter), "is_active")
    list_select_related = ("role",)
    search_fields = ("email", "full_name")
    autocomplete_fields = ("role",)
    actions = ("reset_two_factor",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(has_two_factor=two_factor.second_factor_exists())

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = UserChangeForm if obj is not None else UserAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("email", "full_name", "role", "password", "password_again")
        return ("email", "full_name", "role", "is_active", "two_factor_enabled", "date_joined", "last_login")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("email", "two_factor_enabled", "date_joined", "last_login")

    @admin.display(boolean=True, description="two-factor")
    def two_factor_enabled(self, obj: User) -> bool:
        """Whether the user has a confirmed authenticator (annotated by ``get_queryset``)."""
        return bool(getattr(obj, "has_two_factor", False))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def create_object(self, request: HttpRequest, form: Any) -> User:
        data = form.cleaned_data
        return services.do_create_user(
            email=data["email"],
            full_name=data["full_name"],
            role=data["role"],
            password=data["password"],
            actor=acting_user(request),
        )

    def update_object(self, request: HttpRequest, obj: User, form: Any) -> None:
        actor = acting_user(request)
        if "role" in form.changed_data:
            obj = services.do_change_user_role(obj, form.cleaned_data["role"], actor=actor)
        changes = changed_values(form, ("full_name", "is_active"))
        if changes:
            services.do_update_user(obj, changes, actor=actor)

    @admin.action(description="Reset two-factor authentication", permissions=["change"])
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """Remove each selected user's authenticator; they enrol again at their next login."""

        def step(user: User) -> None:
            services.do_reset_2fa(user, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Two-factor authentication reset")
