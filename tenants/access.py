"""The one access layer: who may see and change which rows.

Every read of tenant data goes through ``restrict_queryset`` (reached as
``Model.objects.restrict(user, action)``), every create through ``can_add``. This module
holds the mechanism and the rule vocabulary; each app registers the rules of its own
models from its ``AppConfig.ready()`` (``register``), and ``manage.py access_table``
prints them all in one table (kept equal to ``docs/access-table.md`` by a test), so a
security review still reads one page.

Fail closed, always:
- no user, inactive user, suspended tenant, missing role, or a role of another tenant or
  of the wrong tenant kind: no ``Caller`` and so no rows;
- a model without a registered rule shows nothing, and fails start-up (``check_rules``);
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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.apps import apps
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core import checks
from django.core.exceptions import (
    EmptyResultSet,
    FieldDoesNotExist,
    ImproperlyConfigured,
    ObjectDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.db import models
from django.db.models import QuerySet
from django.http import Http404

from tenants.models import DEVICE_GROUP_RIGHTS, Action, Role, SupportGrant, Tenant, User
from tenants.querysets import TenantQuerySet

Q_T = TypeVar("Q_T", bound=models.QuerySet[Any])
#: whoever a request, a task or a service hands the access layer; only an active ``User`` gets a ``Caller``
AnyUser = AbstractBaseUser | AnonymousUser | None
M = TypeVar("M", bound=models.Model)

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
    #: the tenant is in read-only maintenance (``Tenant.maintenance``): every write is refused
    in_maintenance: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role.kind == Role.Kind.ADMINISTRATOR

    @property
    def acts_as_admin(self) -> bool:
        """Administrators, and support engineers inside a tenant through an active grant."""
        return self.is_admin or self.support_grant is not None

    @property
    def device_group_limit(self) -> tuple[int, ...] | None:
        """The device groups a support grant is limited to (``None``: not limited, or no grant).

        The rules of device groups, devices, their operations, registrations, payload and
        rollout targets keep such an engineer to these groups; the audit trail to what the
        engineer did under the grant.
        """
        grant = self.support_grant
        return tuple(grant.device_groups) if grant is not None and grant.device_groups else None

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
        if self.in_maintenance:
            return maintenance_notice(self.tenant)
        if self.read_only:
            return "This credential is read-only." if self.support_grant is None else "This support grant is read-only."
        if self.support_grant is not None:
            # What a support engineer never changes, whatever the grant's scope, is registered
            # with each model (who may do what, where device secrets come from); rights on
            # groups are refused by ``manages_rights``, rotation and unblocking by ``keeps_secrets``.
            rules = _REGISTRY.get(model_label)
            if rules is None or rules.support_never_writes:
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


def active_support_grant(user: AnyUser) -> SupportGrant | None:
    """The grant the user works under in this request, if it is still usable."""
    grant = getattr(user, _SUPPORT_GRANT_ATTR, None)
    return grant if grant is not None and grant.usable_by(user) else None


def caller_for(user: AnyUser) -> Caller | None:
    """Build the ``Caller`` for ``user``, or ``None`` when they may see nothing at all."""
    if not isinstance(user, User) or not user.is_authenticated or not user.is_active:
        return None
    tenant = user.tenant
    role = user.role
    if not tenant.is_active or role is None or role.tenant_id != tenant.pk:
        return None
    if role.kind not in role_kinds_for(tenant):
        return None
    read_only = bool(getattr(user, _READ_ONLY_ATTR, False))
    via_token = bool(getattr(user, _VIA_TOKEN_ATTR, False))
    working_in, grant = _working_in(user)
    if working_in.maintenance == Tenant.Maintenance.CLOSED:
        return None
    in_maintenance = working_in.maintenance == Tenant.Maintenance.READ_ONLY
    read_grant = grant is not None and grant.scope == SupportGrant.Scope.READ
    return Caller(
        user=user,
        tenant=working_in,
        role=role,
        read_only=read_only or in_maintenance or read_grant,
        support_grant=grant,
        via_token=via_token,
        in_maintenance=in_maintenance,
    )


def maintenance_notice(tenant: Tenant) -> str:
    """What the tenant's people are told while it is in maintenance."""
    mode = "closed" if tenant.maintenance == Tenant.Maintenance.CLOSED else "read-only"
    reason = f" ({tenant.maintenance_reason})" if tenant.maintenance_reason else ""
    return f"{tenant.name} is in maintenance{reason}: {mode} until the change is complete. Try again later."


def closed_for_maintenance(user: AnyUser) -> Tenant | None:
    """The tenant a signed-in ``user`` works in if it is closed for maintenance (then ``caller_for`` is None)."""
    if not isinstance(user, User) or not user.is_authenticated:
        return None
    working_in, _ = _working_in(user)
    return working_in if working_in.maintenance == Tenant.Maintenance.CLOSED else None


def _working_in(user: User) -> tuple[Tenant, SupportGrant | None]:
    """The tenant whose data ``user`` works in (a support engineer: their grant's), and the grant.

    Maintenance is that tenant's: an engineer inside a closed customer tenant is shut out too.
    """
    role = user.role
    grant = active_support_grant(user) if role is not None and role.kind == Role.Kind.SUPPORT else None
    return (grant.tenant if grant is not None else user.tenant), grant


def pinned(qs: Q_T, caller: Caller) -> Q_T:
    """The first step of every rule: only rows of the caller's tenant (``tenant_lookup`` leads there)."""
    lookup = getattr(qs.model, "tenant_lookup", "tenant")
    return qs.filter(**{lookup: caller.tenant.pk})


# --- the registry: each app registers the rules of its own models -------------------------

Rule = Callable[[QuerySet[Any], Caller, str], QuerySet[Any]]
AddRule = Callable[[Caller], bool]


@dataclass(frozen=True)
class Registration:
    """Who may see and change the rows of one model, and who may create them."""

    rows: Rule
    add: AddRule | None
    #: support engineers never write this model, whatever their grant's scope
    support_never_writes: bool


_REGISTRY: dict[str, Registration] = {}


def register(label: str, rows: Rule, *, add: AddRule | None = None, support_never_writes: bool = False) -> None:
    """Give the model ``label`` (``app_label.Model``) its rules; called from its app's ``AppConfig.ready()``.

    ``rows`` narrows a queryset to the rows a caller may ``view``/``change``/``delete``;
    ``add`` says whether the caller may create rows at all (no ``add``: nobody, through
    any door). A model with a tenant-scoped manager and no registration fails start-up
    (``check_rules``) and shows nothing until then.
    """
    entry = Registration(rows=rows, add=add, support_never_writes=support_never_writes)
    # ``ready()`` may run again in tests that reload apps; the same rules again are harmless.
    if _REGISTRY.get(label, entry) != entry:
        raise ImproperlyConfigured(f"Access rules for {label} are registered twice, differently.")
    _REGISTRY[label] = entry


def registration(label: str) -> Registration | None:
    """The rules registered for ``label``, if any."""
    return _REGISTRY.get(label)


def registered() -> dict[str, Registration]:
    """Every registration, by model label (``manage.py access_table``)."""
    return dict(_REGISTRY)


# --- rule vocabulary shared by every app ---------------------------------------------------


def admin_only(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators (and support engineers inside a grant), every row of the tenant; nobody else."""
    return pinned(qs, caller) if caller.acts_as_admin else qs.none()


def admin_view_only(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators (and support inside a grant) read the tenant's rows; nobody changes them."""
    return pinned(qs, caller) if caller.acts_as_admin and action == Action.VIEW else qs.none()


def tenant_readable(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Reference data: every member reads it, administrators change it."""
    qs = pinned(qs, caller)
    return qs if action == Action.VIEW or caller.acts_as_admin else qs.none()


def acting_admins(caller: Caller) -> bool:
    """Administrators, and support engineers inside a write grant."""
    return caller.acts_as_admin


def administrators(caller: Caller) -> bool:
    """The tenant's own administrators (never support)."""
    return caller.is_admin


def secret_keepers(caller: Caller) -> bool:
    """The tenant's own administrators, writing, not under a support grant (``Caller.keeps_secrets``)."""
    return caller.keeps_secrets


# --- the tenants app's own models ----------------------------------------------------------


def tenant_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Operators see and manage every tenant (settings, never data); others see their own, administrators change it."""
    if caller.is_operator and action in (Action.VIEW, Action.ADD, Action.CHANGE):
        return qs
    if action == Action.VIEW or (caller.is_admin and action == Action.CHANGE):
        return pinned(qs, caller)
    return qs.none()


def user_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators every user of the tenant; others see themselves only."""
    qs = pinned(qs, caller)
    if caller.acts_as_admin:
        return qs
    return qs.filter(pk=caller.user.pk) if action == Action.VIEW else qs.none()


def role_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Administrators every role of the tenant; others see their own role only."""
    qs = pinned(qs, caller)
    if caller.acts_as_admin:
        return qs
    return qs.filter(pk=caller.role.pk) if action == Action.VIEW else qs.none()


def api_token_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """Owners see and revoke their own tokens; administrators every token of the tenant."""
    qs = pinned(qs, caller)
    return qs if caller.is_admin else qs.filter(user=caller.user.pk)


def support_grant_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """The tenant's own administrators alone, never the engineer the grant is for."""
    return pinned(qs, caller) if caller.is_admin else qs.none()


def operators(caller: Caller) -> bool:
    """Platform operators."""
    return caller.is_operator


def without_a_token(caller: Caller) -> bool:
    """Anyone with access, from a verified session: a token that could mint tokens would outlive its expiry."""
    return not caller.via_token


def register_rules() -> None:
    """The tenants app's models (called from ``TenantsConfig.ready``)."""
    register("tenants.Tenant", tenant_rule, add=operators, support_never_writes=True)
    register("tenants.User", user_rule, add=administrators, support_never_writes=True)
    register("tenants.Role", role_rule, add=administrators, support_never_writes=True)
    register("tenants.ApiToken", api_token_rule, add=without_a_token, support_never_writes=True)
    register("tenants.SupportGrant", support_grant_rule, add=administrators, support_never_writes=True)


def _summary(function: Callable[..., Any] | None, default: str) -> str:
    """The first line of a rule's docstring: what the table says about it."""
    doc = (function.__doc__ or "").strip() if function is not None else ""
    return doc.splitlines()[0].replace("|", "\\|") if doc else default


def access_table() -> str:
    """Every registered rule as one Markdown table (``manage.py access_table``, ``docs/access-table.md``)."""
    lines = [
        "# Access table",
        "",
        "Who may see, change and create the rows of every tenant-scoped model. Generated by",
        "`manage.py access_table > docs/access-table.md`; a test keeps this file equal to the output.",
        "Each app registers its models' rules in its `access.py`; [security.md](security.md) explains them.",
        "",
        "| model | tenant path | rows (view, change, delete) | add | support engineers write |",
        "|---|---|---|---|---|",
    ]
    for label, entry in sorted(_REGISTRY.items()):
        model = apps.get_model(label)
        support = "never" if entry.support_never_writes else "as the rules allow, under a write grant"
        rows = _summary(entry.rows, "(undocumented rule)")
        add = _summary(entry.add, "nobody") if entry.add is not None else "nobody"
        lines.append(f"| `{label}` | `{tenant_path(model)}` | {rows} | {add} | {support} |")
    return "\n".join(lines) + "\n"


# --- start-up check: every tenant-scoped model has rules and a path to its tenant ----------

#: a plain id column may stand for the tenant where a foreign key cannot (payload rows
#: live in the telemetry database, which holds no tenants table)
TENANT_ID_COLUMN = "tenant_id"


def tenant_path(model: type[models.Model]) -> str:
    """The lookup from a row of ``model`` to its tenant (``tenant_lookup``, default ``tenant``)."""
    return str(getattr(model, "tenant_lookup", "tenant"))


def tenant_path_problem(model: type[models.Model]) -> str | None:
    """Why ``model``'s tenant path does not lead to ``tenants.Tenant``, or ``None`` when it does."""
    path = tenant_path(model)
    if model is Tenant:
        return None if path == "pk" else f"tenant_lookup of Tenant must be 'pk', not {path!r}"
    if path == TENANT_ID_COLUMN:
        try:
            field = model._meta.get_field(TENANT_ID_COLUMN)
        except FieldDoesNotExist:
            return f"has no field {TENANT_ID_COLUMN!r}"
        if isinstance(field, models.BigIntegerField | models.IntegerField) and not field.null:
            return None
        return f"{TENANT_ID_COLUMN!r} must be a non-null integer column holding the tenant's id"
    current: Any = model
    for part in path.split("__"):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return f"{path!r} has no field {part!r} on {current._meta.label}"
        if not (field.many_to_one or field.one_to_one) or field.related_model is None:
            return f"{path!r} steps over {current._meta.label}.{part}, which is not a foreign key"
        current = field.related_model
    return None if current is Tenant else f"{path!r} leads to {current._meta.label}, not tenants.Tenant"


def is_tenant_scoped(model: type[models.Model]) -> bool:
    """Whether ``model``'s default manager is tenant-scoped (offers ``restrict``)."""
    return isinstance(model._default_manager.all(), TenantQuerySet)


def rule_problems(candidates: Iterable[type[models.Model]]) -> list[checks.CheckMessage]:
    """What is wrong with the rules of ``candidates``: a tenant-scoped model without one, a bad tenant path."""
    problems: list[checks.CheckMessage] = []
    for model in candidates:
        if not is_tenant_scoped(model):
            continue
        label = model._meta.label
        if label not in _REGISTRY:
            problems.append(
                checks.Error(
                    f"{label} has a tenant-scoped manager but no access rules.",
                    hint="Call tenants.access.register() for it from its app's AppConfig.ready().",
                    obj=model,
                    id="cot.E002",
                )
            )
        if (problem := tenant_path_problem(model)) is not None:
            problems.append(checks.Error(f"{label}: tenant path {problem}.", obj=model, id="cot.E003"))
    return problems


@checks.register(checks.Tags.security)
def check_rules(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Fail start-up when a tenant-scoped model has no rules, or rules name no model."""
    problems = rule_problems(apps.get_models())
    known = {model._meta.label for model in apps.get_models()}
    problems += [
        checks.Error(f"Access rules are registered for {label}, which is not an installed model.", id="cot.E004")
        for label in sorted(_REGISTRY.keys() - known)
    ]
    return problems


def restrict_queryset(qs: Q_T, user: Any, action: str) -> Q_T:
    """Rows of ``qs`` on which ``user`` may perform ``action``; none when in doubt."""
    caller = caller_for(user)
    rules = _REGISTRY.get(qs.model._meta.label)
    if caller is None or rules is None or not caller.allows(action, qs.model._meta.label):
        return qs.none()
    restricted: Q_T = rules.rows(qs, caller, action)  # type: ignore[assignment]
    return restricted


def may_view_model(user: AnyUser, model: type[models.Model], action: str = Action.VIEW) -> bool:
    """Whether the rules would ever let ``user`` ``action`` rows of ``model``, whether or not one exists yet.

    A rule says "never" as ``qs.none()`` or as a condition nothing can match (``pk__in=[]``:
    a role without the right); Django recognises both while compiling the restricted query,
    so the query is compiled, never run. For payload models a constrained caller's rule
    reads their devices first (a query); ask about ``devices.Device`` for them instead.
    """
    rows = restrict_queryset(model._default_manager.all(), user, action)
    try:
        rows.query.get_compiler(using=rows.db).as_sql()
    except EmptyResultSet:
        return False
    return True


def caller_may_add(caller: Caller, model: type[models.Model]) -> bool:
    """Whether ``caller`` may create rows of ``model`` in their tenant."""
    rules = _REGISTRY.get(model._meta.label)
    add = rules.add if rules is not None else None
    return add is not None and caller.allows(Action.ADD, model._meta.label) and add(caller)


def add_refusal(caller: Caller, model: type[models.Model]) -> str | None:
    """Why ``caller`` may not create rows of ``model``, or ``None`` when they may."""
    if caller_may_add(caller, model):
        return None
    if caller.via_token and model._meta.label == "tenants.ApiToken":
        return TOKENS_NEED_A_SESSION
    return f"You may not create {model._meta.verbose_name_plural}."


def can_add(user: AnyUser, model: type[models.Model]) -> bool:
    """Whether ``user`` may create rows of ``model`` in their tenant."""
    caller = caller_for(user)
    return caller is not None and caller_may_add(caller, model)


def manages_tenants(user: AnyUser) -> bool:
    """Whether ``user`` may suspend and reactivate tenants (platform operators)."""
    caller = caller_for(user)
    return caller is not None and caller.is_operator


def manages_rights(user: AnyUser) -> bool:
    """Whether ``user`` may see and change who holds rights on device groups (administrators)."""
    caller = caller_for(user)
    return caller is not None and caller.is_admin


def keeps_secrets(user: AnyUser) -> bool:
    """Whether ``user`` may mint or receive secrets (``Caller.keeps_secrets``)."""
    caller = caller_for(user)
    return caller is not None and caller.keeps_secrets


def require_secret_keeper(user: AnyUser, what: str) -> None:
    """Refuse (403) unless ``user`` may mint or receive secrets; ``what`` names the deed."""
    if not keeps_secrets(user):
        raise PermissionDenied(f"Only the tenant's administrators {what} (never under a support grant).")


def require_caller(user: AnyUser) -> Caller:
    """The caller, or ``PermissionDenied`` for someone who may do nothing."""
    caller = caller_for(user)
    if caller is None:
        raise PermissionDenied("Your account has no access.")
    return caller


# --- read-side helpers of the services ------------------------------------------------------


def access_by_id(actor: User, model: type[M], pk: Any, action: str) -> M:
    """The row ``pk`` if ``actor`` may ``action`` it; 404 alike for missing and out of reach."""
    qs = restrict_queryset(model._default_manager.all(), actor, action)
    try:
        return qs.get(pk=pk)
    except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404(f"No {model._meta.verbose_name} matches the given query.") from None


def require_add(actor: User | None, model: type[models.Model]) -> None:
    """Refuse to create ``model`` rows unless the actor may."""
    if actor is not None:
        tenant_for_add(actor, model, None)


def tenant_for_add(actor: User | None, model: type[models.Model], tenant: Tenant | None) -> Tenant:
    """Refuse unless the actor may create ``model`` rows; the tenant they go into.

    Always the actor's own tenant, never one from a form; ``tenant`` is for the platform
    acting without an actor (commands, jobs).
    """
    if actor is not None:
        caller = require_caller(actor)
        refusal = add_refusal(caller, model)
        if refusal is not None:
            # 403, not 404: which models exist is no secret.
            raise PermissionDenied(refusal)
        return caller.tenant
    if tenant is None:
        raise ValueError("A tenant is required when the platform acts.")
    return tenant
