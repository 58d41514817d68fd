"""Password authentication by e-mail, refusing users of suspended tenants."""

from typing import Any

from django.contrib.auth.backends import ModelBackend

from cot.database.scope import cross_tenant, enter_tenant, tenant_scope


def enter_tenant_of(user: Any) -> None:
    """The rest of the request sees ``user``'s tenant only (operators: and the tenant list)."""
    from tenants.models import Role

    role = getattr(user, "role", None)
    enter_tenant(user.tenant_id, operator=role is not None and role.kind == Role.Kind.OPERATOR)


def lockout_username(request: Any, credentials: dict[str, Any] | None = None) -> str | None:
    """The name django-axes counts failures under: the e-mail as the backend matches it.

    The backend ignores case and surrounding spaces, so the lockout must too; otherwise
    every spelling (``Admin@…``, ``ADMIN@…``) would be a lockout of its own.
    """
    raw = credentials.get("username") if credentials else getattr(request, "POST", {}).get("username")
    return raw.strip().lower() if isinstance(raw, str) else None


class TenantEmailBackend(ModelBackend):
    """``ModelBackend`` keyed on e-mail (case-insensitive).

    Django-level permissions (``has_perm``) are deliberately empty: rights come from the
    access layer only, so a stray ``auth_permission`` row grants nothing.
    """

    def authenticate(self, request: Any, username: str | None = None, password: str | None = None, **kw: Any) -> Any:
        from tenants.models import User

        email = (username or kw.get("email") or "").strip()
        if not email or password is None:
            return None
        if request is not None:
            # This attempt reached the password check (was not refused by the lockout
            # first): the audit trail chains it (audit.receivers).
            request.cot_password_checked = True
        with cross_tenant("auth.login"):
            user = User.objects.select_related("tenant", "role").filter(email__iexact=email).first()
        if user is None:
            User().set_password(password)  # same work as a real check: no timing oracle for e-mails
            return None
        with tenant_scope(user.tenant_id):  # a hash from an older hasher is upgraded: a write
            accepted = user.check_password(password) and self.user_can_authenticate(user)
        if not accepted:
            return None
        enter_tenant_of(user)
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(user.is_active and user.tenant.is_active)

    def get_user(self, user_id: Any) -> Any:
        from tenants.models import User

        # Suspended tenants still resolve here so TenantSessionMiddleware can end the
        # session with a message; the access layer denies them regardless.
        with cross_tenant("auth.session"):
            user = User.objects.select_related("tenant", "role").filter(pk=user_id).first()
        if user is None or not user.is_active:
            return None
        enter_tenant_of(user)
        return user

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return False

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        return set()
