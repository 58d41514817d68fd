"""The one access layer: who may see and change which rows.

Every read of tenant data goes through ``restrict_queryset`` (reached as
``Model.objects.restrict(user, action)``), every create through ``can_add``. The rules
for all models live here, side by side, so a security review reads one file.

Fail closed, always:
- no user, inactive user, suspended tenant, missing role, or a role of another tenant or
  of the wrong tenant kind: no ``Caller`` and so no rows;
- a model without a rule here shows nothing;
- built-in roles take their rights from code, not from the database, so a half-written
  role row (the migration incident in the brochure's report) can never widen them;
- every object-permission row only counts when its group, its user or role and the
  caller all belong to the same tenant;
- a support engineer is inside a customer tenant only while the grant their session
  carries is usable (bound to them, not expired, not revoked), checked on every call;
- whatever mints or returns a secret (device credentials, registration secrets) is for
  the tenant's own administrators (``Caller.keeps_secrets``), never under a support
  grant, never through a read-only credential; API tokens are minted from a verified
  session only, never by another token;
- secret fields (password hashes, digests of tokens and credentials) are never a filter,
  search or sort key anywhere (``touches_secret``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models
from django.db.models import Exists, OuterRef, Q

from tenants.models import DEVICE_GROUP_RIGHTS, Action, Role, SupportGrant, Tenant, User

Q_T = TypeVar("Q_T", bound=models.QuerySet[Any])

# Rights of built-in roles on the device groups granted to them. Custom roles store theirs.
BUILTIN_RIGHTS: dict[str, frozenset[str]] = {
    Role.Kind.STANDARD: frozenset({Action.VIEW, Action.CHANGE}),
    Role.Kind.BUSINESS: frozenset({Action.VIEW}),
    Role.Kind.ADMINISTRATOR: frozenset(),
    Role.Kind.OPERATOR: frozenset(),
    Role.Kind.SUPPORT: frozenset(),
}
CUSTOMER_ROLE_KINDS = frozenset({Role.Kind.ADMINISTRATOR, Role.Kind.STANDARD, Role.Kind.BUSINESS, Role.Kind.CUSTOM})
PROVIDER_ROLE_KINDS = frozenset({Role.Kind.OPERATOR, Role.Kind.SUPPORT})
WRITE_ACTIONS = frozenset({Action.ADD, Action.CHANGE, Action.DELETE})
# What a support engineer never changes, whatever the grant's scope: who may do what
# (tenant policy, users, roles, tokens, grants) and where device secrets come from
# (registrations hand out credentials). Rights on groups are refused by
# ``manages_rights``; credential rotation and unblocking by ``keeps_secrets``.
SUPPORT_NEVER_WRITES = frozenset(
    {
        "tenants.Tenant",
        "tenants.User",
        "tenants.Role",
        "tenants.ApiToken",
        "tenants.SupportGrant",
        "devices.DeviceRegistration",
    }
)
TOKENS_NEED_A_SESSION = (
    "API tokens are created in the cockpit after two-factor login, or with manage.py create_api_token; "
    "an API token cannot create another."
)
_READ_ONLY_ATTR = "_cot_read_only"
_VIA_TOKEN_ATTR = "_cot_via_token"  # noqa: S105 (an attribute name, not a secret)
_SUPPORT_GRANT_ATTR = "_cot_support_grant"


@dataclass(frozen=True)
class Caller:
    """An authenticated user as the access layer sees them for one request."""

    user: User
    tenant: Tenant
    role: Role
    read_only: bool
    support_grant: SupportGrant | None = None
    via_token: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role.kind == Role.Kind.ADMINISTRATOR

    @property
    def acts_as_admin(self) -> bool:
        """Administrators, and support engineers inside a tenant through an active grant."""
        return self.is_admin or self.support_grant is not None

    @property
    def is_operator(self) -> bool:
        return self.role.kind == Role.Kind.OPERATOR

    @property
    def rights(self) -> frozenset[str]:
        """Rights on granted device groups; a read-only caller keeps only ``view``."""
        if self.role.kind == Role.Kind.CUSTOM:
            rights = frozenset(r for r in self.role.rights if r in DEVICE_GROUP_RIGHTS)
        else:
            rights = BUILTIN_RIGHTS[self.role.kind]
        return rights & {Action.VIEW} if self.read_only else rights

    @property
    def keeps_secrets(self) -> bool:
        """Whether the caller may mint or receive secrets: the tenant's own administrators, writing.

        Never a support engineer (whatever the grant's scope), never a read-only
        credential. A credential outlives the user's deactivation and the 24-hour grant,
        so whoever is handed one must be someone the tenant trusts with everything.
        """
        return self.is_admin and not self.read_only and self.support_grant is None

    @property
    def may_write(self) -> bool:
        """Whether the role writes anything at all (and so may hold write-scoped tokens)."""
        return self.is_admin or self.is_operator or bool(self.rights - {Action.VIEW})

    def allows(self, action: str, model_label: str) -> bool:
        """Whether the caller may perform ``action`` on ``model_label`` at all, before any row.

        A read-only token writes nothing; a Business user writes nothing but their own
        API tokens.
        """
        return self.refusal(action, model_label) is None

    def refusal(self, action: str, model_label: str) -> str | None:
        """Why ``allows`` says no (for a 403 that says why), or ``None`` when it says yes."""
        if action not in WRITE_ACTIONS:
            return None
        if self.read_only:
            return "This credential is read-only." if self.support_grant is None else "This support grant is read-only."
        if self.support_grant is not None:
            if model_label in SUPPORT_NEVER_WRITES:
                return "Support engineers never change this, whatever the grant's scope."
            return None
        if self.role.kind == Role.Kind.BUSINESS and model_label != "tenants.ApiToken":
            return "Your role only reads."
        return None


# Fields that hold a secret or a digest of one. Project models name theirs in a
# ``secret_fields`` class attribute; these are those of Django's and django-otp's models.
_SECRET_FIELDS_ELSEWHERE: dict[str, frozenset[str]] = {
    "otp_totp.TOTPDevice": frozenset({"key"}),
    "otp_static.StaticToken": frozenset({"token"}),
    "sessions.Session": frozenset({"session_key", "session_data"}),
}
_ALWAYS_SECRET = frozenset({"password"})


def secret_fields(model: type[models.Model]) -> frozenset[str]:
    """Names of ``model``'s fields that must never be filtered, searched or sorted on."""
    declared = frozenset(getattr(model, "secret_fields", ()))
    return _ALWAYS_SECRET | declared | _SECRET_FIELDS_ELSEWHERE.get(model._meta.label, frozenset())


def touches_secret(model: type[models.Model], path: str) -> bool:
    """Whether the lookup ``path`` (``user__password__startswith``) reads a secret field on its way.

    Such a lookup answers one question about a secret per request; enough requests
    (``__startswith``, ``__lt``) recover it bit by bit.
    """
    from django.core.exceptions import FieldDoesNotExist

    current: Any = model
    for part in path.lstrip("-").split("__"):
        if part in secret_fields(current):
            return True
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return False  # a transform or lookup name ends the field path
        if not field.is_relation or field.related_model is None:
            return False
        current = field.related_model
    return False


def role_kinds_for(tenant: Tenant) -> frozenset[str]:
    """The role kinds that may be held in ``tenant``: provider and customer roles never mix."""
    return PROVIDER_ROLE_KINDS if tenant.is_provider else CUSTOMER_ROLE_KINDS


def limit_to_read(user: User) -> None:
    """Mark ``user`` (for this request only) as acting through a read-only credential."""
    setattr(user, _READ_ONLY_ATTR, True)


def came_with_token(user: User, *, read_only: bool) -> None:
    """Mark ``user`` (for this request only) as authenticated by an API token."""
    setattr(user, _VIA_TOKEN_ATTR, True)
    if read_only:
        limit_to_read(user)


def enter_support_grant(user: User, grant: SupportGrant) -> None:
    """Let a support engineer act (for this request only) inside ``grant``'s tenant.

    ``caller_for`` re-checks the grant on every use, so a grant that expires or is
    revoked mid-request stops working at once.
    """
    setattr(user, _SUPPORT_GRANT_ATTR, grant)


def active_support_grant(user: Any) -> SupportGrant | None:
    """The grant the user works under in this request, if it is still usable."""
    grant = getattr(user, _SUPPORT_GRANT_ATTR, None)
    return grant if grant is not None and grant.usable_by(user) else None


def caller_for(user: Any) -> Caller | None:
    """Build the ``Caller`` for ``user``, or ``None`` when they may see nothing at all."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    tenant = user.tenant
    role = user.role
    if not tenant.is_active or role is None or role.tenant_id != tenant.pk:
        return None
    if role.kind not in role_kinds_for(tenant):
        return None
    read_only = bool(getattr(user, _READ_ONLY_ATTR, False))
    via_token = bool(getattr(user, _VIA_TOKEN_ATTR, False))
    if role.kind == Role.Kind.SUPPORT and (grant := active_support_grant(user)) is not None:
        return Caller(
            user=user,
            tenant=grant.tenant,
            role=role,
            read_only=read_only or grant.scope == SupportGrant.Scope.READ,
            support_grant=grant,
            via_token=via_token,
        )
    return Caller(user=user, tenant=tenant, role=role, read_only=read_only, via_token=via_token)


def pinned(qs: Q_T, caller: Caller) -> Q_T:
    """The first step of every rule: only rows of the caller's tenant (``tenant_lookup`` leads there)."""
    lookup = getattr(qs.model, "tenant_lookup", "tenant")
    return qs.filter(**{lookup: caller.tenant.pk})


def _tenant_rule(qs: Any, caller: Caller, action: str) -> Any:
    # Operators manage tenants (their settings, never their data); others see their own.
    if caller.is_operator and action in (Action.VIEW, Action.ADD, Action.CHANGE):
        return qs
    if action == Action.VIEW or (caller.is_admin and action == Action.CHANGE):
        return pinned(qs, caller)
    return qs.none()


def _user_rule(qs: Any, caller: Caller, action: str) -> Any:
    qs = pinned(qs, caller)
    if caller.acts_as_admin:
        return qs
    return qs.filter(pk=caller.user.pk) if action == Action.VIEW else qs.none()


def _role_rule(qs: Any, caller: Caller, action: str) -> Any:
    qs = pinned(qs, caller)
    if caller.acts_as_admin:
        return qs
    return qs.filter(pk=caller.role.pk) if action == Action.VIEW else qs.none()


def _api_token_rule(qs: Any, caller: Caller, action: str) -> Any:
    # Owners see and revoke their own tokens; administrators every token of the tenant.
    qs = pinned(qs, caller)
    return qs if caller.is_admin else qs.filter(user=caller.user.pk)


def _admin_view_only(qs: Any, caller: Caller, action: str) -> Any:
    return pinned(qs, caller) if caller.acts_as_admin and action == Action.VIEW else qs.none()


def _support_grant_rule(qs: Any, caller: Caller, action: str) -> Any:
    # Grants are the customer administrators' business alone, never the engineer's.
    return pinned(qs, caller) if caller.is_admin else qs.none()


def device_groups_q(caller: Caller, action: str, group_field: str = "pk") -> Q:
    """Q matching rows whose device group (``group_field``) grants the caller ``action``.

    Device groups pass ``"pk"``; devices ``"group_id"`` and operations
    ``"device__group_id"``, so rights granted on a group reach its devices.
    """
    from devices.models import DeviceGroupRolePermission, DeviceGroupUserPermission

    if caller.acts_as_admin:
        return Q()
    if action not in caller.rights:
        return Q(pk__in=[])
    codename = f"{action}_devicegroup"
    group_ref = OuterRef(group_field)
    by_user = DeviceGroupUserPermission.objects.filter(
        content_object=group_ref,
        content_object__tenant=caller.tenant.pk,
        user=caller.user.pk,
        user__tenant=caller.tenant.pk,
        permission__codename=codename,
    )
    by_role = DeviceGroupRolePermission.objects.filter(
        content_object=group_ref,
        content_object__tenant=caller.tenant.pk,
        group=caller.role.group_id,
        group__cot_role__tenant=caller.tenant.pk,
        permission__codename=codename,
    )
    return Q(Exists(by_user)) | Q(Exists(by_role))


def _in_granted_groups(group_field: str) -> Callable[[Any, Caller, str], Any]:
    """Rule for rows reached through a device group: administrators all, others by grant."""

    def rule(qs: Any, caller: Caller, action: str) -> Any:
        qs = pinned(qs, caller)
        if action == Action.ADD:
            return qs if caller.acts_as_admin else qs.none()
        return qs.filter(device_groups_q(caller, action, group_field))

    return rule


def _registration_rule(qs: Any, caller: Caller, action: str) -> Any:
    # Registrations hand out device credentials: support may look (a read grant is for
    # looking), only the tenant's administrators change them (see SUPPORT_NEVER_WRITES).
    return pinned(qs, caller) if caller.acts_as_admin else qs.none()


def _tenant_readable(qs: Any, caller: Caller, action: str) -> Any:
    # Reference data (device types): every member reads it, administrators change it.
    qs = pinned(qs, caller)
    return qs if action == Action.VIEW or caller.acts_as_admin else qs.none()


def _payload_purge_rule(qs: Any, caller: Caller, action: str) -> Any:
    # Progress of purge jobs: administrators see every one of the tenant, others those
    # they started; rows are written by the job alone, never changed by anyone.
    if action != Action.VIEW:
        return qs.none()
    qs = pinned(qs, caller)
    return qs if caller.acts_as_admin else qs.filter(created_by=caller.user.pk)


def _payload_rule(qs: Any, caller: Caller, action: str) -> Any:
    """Payload rows (telemetry database) follow their device's rights.

    The stores cannot be joined, so a constrained caller's reachable device ids are read
    from the registry first; administrators need only the tenant pin.
    """
    from devices.models import Device

    qs = pinned(qs, caller)
    if caller.acts_as_admin:
        return qs
    device_action = Action.VIEW if action == Action.VIEW else Action.CHANGE
    devices = _RULES["devices.Device"](Device.objects.all(), caller, device_action)
    return qs.filter(device_id__in=list(devices.values_list("pk", flat=True)))


_RULES: dict[str, Callable[[Any, Caller, str], Any]] = {
    "tenants.Tenant": _tenant_rule,
    "tenants.User": _user_rule,
    "tenants.Role": _role_rule,
    "tenants.ApiToken": _api_token_rule,
    "devices.DeviceGroup": _in_granted_groups("pk"),
    "devices.Device": _in_granted_groups("group_id"),
    "devices.Operation": _in_granted_groups("device__group_id"),
    "devices.DeviceType": _tenant_readable,
    "devices.DeviceRegistration": _registration_rule,
    "devices.PayloadPurge": _payload_purge_rule,
    "devices.Measurement": _payload_rule,
    "devices.Event": _payload_rule,
    "devices.Alarm": _payload_rule,
    "devices.OperationResult": _payload_rule,
    "audit.AuditEntry": _admin_view_only,
    "tenants.SupportGrant": _support_grant_rule,
}

# Who may create rows of a model at all (the row-level rules above then apply to them).
_ADD_RULES: dict[str, Callable[[Caller], bool]] = {
    "tenants.Tenant": lambda c: c.is_operator,
    "tenants.User": lambda c: c.is_admin,
    "tenants.Role": lambda c: c.is_admin,
    # Tokens come from a verified cockpit session (or the management command), never
    # from another token: a token that can mint tokens would outlive its own expiry.
    "tenants.ApiToken": lambda c: not c.via_token,
    "devices.DeviceGroup": lambda c: c.acts_as_admin,
    "devices.Device": lambda c: c.acts_as_admin,
    "devices.DeviceType": lambda c: c.acts_as_admin,
    "devices.DeviceRegistration": lambda c: c.keeps_secrets,
    # Operating a device needs "change" on its group; checked on the device in services.
    "devices.Operation": lambda c: c.acts_as_admin or Action.CHANGE in c.rights,
    "tenants.SupportGrant": lambda c: c.is_admin,
}


def restrict_queryset(qs: Q_T, user: Any, action: str) -> Q_T:
    """Rows of ``qs`` on which ``user`` may perform ``action``; none when in doubt."""
    caller = caller_for(user)
    rule = _RULES.get(qs.model._meta.label)
    if caller is None or rule is None or not caller.allows(action, qs.model._meta.label):
        return qs.none()
    restricted: Q_T = rule(qs, caller, action)
    return restricted


def may_view_model(user: Any, model: type[models.Model], action: str = Action.VIEW) -> bool:
    """Whether the rules would ever let ``user`` ``action`` rows of ``model``, whether or not one exists yet.

    A rule says "never" as ``qs.none()`` or as a condition nothing can match (``pk__in=[]``:
    a role without the right); Django recognises both while compiling the restricted query,
    so the query is compiled, never run. For payload models a constrained caller's rule
    reads their devices first (a query); ask about ``devices.Device`` for them instead.
    """
    from django.core.exceptions import EmptyResultSet

    rows = restrict_queryset(model._default_manager.all(), user, action)
    try:
        rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        return False
    return True


def caller_may_add(caller: Caller, model: type[models.Model]) -> bool:
    """Whether ``caller`` may create rows of ``model`` in their tenant."""
    rule = _ADD_RULES.get(model._meta.label)
    return rule is not None and caller.allows(Action.ADD, model._meta.label) and rule(caller)


def add_refusal(caller: Caller, model: type[models.Model]) -> str | None:
    """Why ``caller`` may not create rows of ``model``, or ``None`` when they may."""
    if caller_may_add(caller, model):
        return None
    if caller.via_token and model._meta.label == "tenants.ApiToken":
        return TOKENS_NEED_A_SESSION
    return f"You may not create {model._meta.verbose_name_plural}."


def can_add(user: Any, model: type[models.Model]) -> bool:
    """Whether ``user`` may create rows of ``model`` in their tenant."""
    caller = caller_for(user)
    return caller is not None and caller_may_add(caller, model)


def manages_tenants(user: Any) -> bool:
    """Whether ``user`` may suspend and reactivate tenants (platform operators)."""
    caller = caller_for(user)
    return caller is not None and caller.is_operator


def manages_rights(user: Any) -> bool:
    """Whether ``user`` may see and change who holds rights on device groups (administrators)."""
    caller = caller_for(user)
    return caller is not None and caller.is_admin


def keeps_secrets(user: Any) -> bool:
    """Whether ``user`` may mint or receive secrets (``Caller.keeps_secrets``)."""
    caller = caller_for(user)
    return caller is not None and caller.keeps_secrets


def require_secret_keeper(user: Any, what: str) -> None:
    """Refuse (403) unless ``user`` may mint or receive secrets; ``what`` names the deed."""
    from django.core.exceptions import PermissionDenied

    if not keeps_secrets(user):
        raise PermissionDenied(f"Only the tenant's administrators {what} (never under a support grant).")


def require_caller(user: Any) -> Caller:
    """The caller, or ``PermissionDenied`` for someone who may do nothing."""
    from django.core.exceptions import PermissionDenied

    caller = caller_for(user)
    if caller is None:
        raise PermissionDenied("Your account has no access.")
    return caller
