"""Cockpit pages for tenants, users, roles and API tokens; every write goes through ``tenants.services``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from tenants import access, services, two_factor
from tenants.admin_mixins import CreateOnlyAdminMixin, ServiceForm, TenantScopedAdminMixin, acting_user
from tenants.admin_site import cockpit
from tenants.models import DEVICE_GROUP_RIGHT_CHOICES, Action, ApiToken, Role, Tenant, User


def _changed(form: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The submitted values of those of ``names`` the user actually changed."""
    return {name: form.cleaned_data[name] for name in names if name in form.changed_data}


def run_for_each(admin_obj: Any, request: HttpRequest, queryset: QuerySet[Any], step: Any, done: str) -> None:
    """Apply a service ``step`` to every selected row; report successes and refusals."""
    count = 0
    for row in queryset:
        try:
            step(row)
        except (ValidationError, PermissionDenied, Http404) as exc:
            reason = " ".join(exc.messages) if isinstance(exc, ValidationError) else "not allowed"
            admin_obj.message_user(request, f"{row}: {reason}", messages.ERROR)
        else:
            count += 1
    if count:
        admin_obj.message_user(request, f"{done}: {count}.", messages.SUCCESS)


# --- tenants -------------------------------------------------------------------------------


class TenantForm(ServiceForm):
    """Slug and name when adding; the policy fields when changing (the admin picks which)."""

    class Meta:
        model = Tenant
        fields = ("slug", "name", *services.POLICY_FIELDS)


@admin.register(Tenant, site=cockpit)
class TenantAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Operators list, create, suspend and reactivate tenants; administrators edit their policy."""

    form = TenantForm
    list_display = ("slug", "name", "kind", "status")
    list_filter = ("kind", "status")
    search_fields = ("slug", "name")
    actions = ("suspend", "reactivate")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("slug", "name")
        return ("slug", "kind", "status", *services.POLICY_FIELDS, "created_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        editable = services.policy_fields_for(acting_user(request))
        return ("slug", "kind", "status", *(f for f in services.POLICY_FIELDS if f not in editable), "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_status_permission(self, request: HttpRequest) -> bool:
        """Only platform operators suspend or reactivate tenants."""
        return access.manages_tenants(request.user)

    def create_object(self, request: HttpRequest, form: Any) -> Tenant:
        data = form.cleaned_data
        return services.do_create_tenant(slug=data["slug"], name=data["name"], actor=acting_user(request))

    def update_object(self, request: HttpRequest, obj: Tenant, form: Any) -> None:
        changes = _changed(form, services.policy_fields_for(acting_user(request)))
        if changes:
            services.do_update_tenant_policy(obj, changes, actor=acting_user(request))

    @admin.action(description="Suspend selected tenants", permissions=["status"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """Suspend each selected tenant; its users lose access at once."""

        def step(tenant: Tenant) -> None:
            services.do_set_tenant_status(tenant, Tenant.Status.SUSPENDED, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Suspended")

    @admin.action(description="Reactivate selected tenants", permissions=["status"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        """Reactivate each selected tenant."""

        def step(tenant: Tenant) -> None:
            services.do_set_tenant_status(tenant, Tenant.Status.ACTIVE, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Reactivated")


# --- users ---------------------------------------------------------------------------------


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
        return super().get_queryset(request).annotate(has_two_factor=two_factor.confirmed_authenticator_exists())

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
        changes = _changed(form, ("full_name", "is_active"))
        if changes:
            services.do_update_user(obj, changes, actor=actor)

    @admin.action(description="Reset two-factor authentication", permissions=["change"])
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """Remove each selected user's authenticator; they enrol again at their next login."""

        def step(user: User) -> None:
            services.do_reset_2fa(user, actor=acting_user(request))

        run_for_each(self, request, queryset, step, "Two-factor authentication reset")


# --- roles ---------------------------------------------------------------------------------


class RoleForm(ServiceForm):
    """A custom role: its name, device-group rights as checkboxes, and a description."""

    rights = forms.MultipleChoiceField(
        choices=DEVICE_GROUP_RIGHT_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Role
        fields = ("name", "rights", "description")


@admin.register(Role, site=cockpit)
class RoleAdmin(TenantScopedAdminMixin, admin.ModelAdmin):
    """Built-in roles are shown read-only; custom roles are created, changed and deleted."""

    form = RoleForm
    list_display = ("name", "kind", "rights_list", "description")
    list_filter = ("kind",)
    search_fields = ("name",)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("name", "rights", "description") if obj is None else ("name", "kind", "rights", "description")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else ("kind",)

    @admin.display(description="rights")
    def rights_list(self, obj: Role) -> str:
        """The role's device-group rights, comma-separated."""
        return ", ".join(obj.rights) or "—"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not (obj is not None and obj.is_builtin) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not (obj is not None and obj.is_builtin) and super().has_delete_permission(request, obj)

    def create_object(self, request: HttpRequest, form: Any) -> Role:
        data = form.cleaned_data
        return services.do_create_role(
            name=data["name"],
            rights=data["rights"],
            description=data["description"],
            actor=acting_user(request),
        )

    def update_object(self, request: HttpRequest, obj: Role, form: Any) -> None:
        changes = _changed(form, ("name", "rights", "description"))
        if changes:
            services.do_update_role(obj, changes, actor=acting_user(request))

    def delete_object(self, request: HttpRequest, obj: Role) -> None:
        services.do_delete_role(obj, actor=acting_user(request))


# --- API tokens ----------------------------------------------------------------------------


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


# Support grants live in their own module; importing it registers their admin.
from tenants import admin_support  # noqa: E402, F401
