"""Every write to tenants, users, roles, rights and API tokens.

Each ``do_*`` function checks access through ``tenants.access``, changes state and
records the audit event in one transaction. ``actor=None`` means the platform itself
(a management command run by someone with shell access); every other caller passes the
acting user and is checked.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

import audit
from tenants import access, two_factor
from tenants.models import DEVICE_GROUP_RIGHTS, Action, ApiToken, Role, SupportGrant, Tenant, User
from tenants.tokens import new_secret, secret_digest, shown_prefix

M = TypeVar("M", bound=models.Model)

CUSTOMER_BUILTIN_ROLES = (
    ("Administrator", Role.Kind.ADMINISTRATOR),
    ("Standard user", Role.Kind.STANDARD),
    ("Business user", Role.Kind.BUSINESS),
)
PROVIDER_BUILTIN_ROLES = (("Operator", Role.Kind.OPERATOR), ("Support", Role.Kind.SUPPORT))


# --- tenants -----------------------------------------------------------------------------


@transaction.atomic
def do_create_tenant(*, slug: str, name: str, provider: bool = False, actor: User | None = None) -> Tenant:
    """Create a tenant with its built-in roles."""
    access.require_add(actor, Tenant)
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A tenant with slug '{slug}' already exists."})
    if provider and Tenant.objects.filter(kind=Tenant.Kind.PROVIDER).exists():
        raise ValidationError("The provider tenant already exists; there is only one.")
    tenant = Tenant(slug=slug, name=name, kind=Tenant.Kind.PROVIDER if provider else Tenant.Kind.CUSTOMER)
    tenant.full_clean()
    tenant.save()
    roles = PROVIDER_BUILTIN_ROLES if provider else CUSTOMER_BUILTIN_ROLES
    for role_name, kind in roles:
        _create_role_row(tenant, role_name, kind, rights=[])
    audit.record("tenant.create", tenant=tenant, target=tenant, data={"roles": [n for n, _ in roles]}, actor=actor)
    return tenant


@transaction.atomic
def do_set_tenant_status(tenant: Tenant, status: str, *, actor: User | None = None) -> Tenant:
    """Suspend or reactivate a tenant; a suspended tenant loses all access at once."""
    if actor is not None:
        tenant = access.access_by_id(actor, Tenant, tenant.pk, Action.CHANGE)
        if not access.manages_tenants(actor):
            raise PermissionDenied("Only platform operators change a tenant's status.")
    if status not in Tenant.Status.values:
        raise ValidationError({"status": f"Unknown status '{status}'."})
    if tenant.is_provider and status != Tenant.Status.ACTIVE:
        raise ValidationError("The provider tenant cannot be suspended.")
    old = tenant.status
    Tenant.objects.filter(pk=tenant.pk).update(status=status)
    tenant.status = status
    audit.record("tenant.status", tenant=tenant, target=tenant, changes={"status": [old, status]}, actor=actor)
    return tenant


POLICY_FIELDS = (
    "name",
    "require_2fa",
    "session_idle_minutes",
    "api_token_max_days",
    "certified_devices_only",
    "auto_accept_registrations",
    "payload_retention_days",
    "rate_limits",
)


# Operators set quotas; each customer's administrators set their own security policy.
OPERATOR_FIELDS = ("name", "rate_limits")


def policy_fields_for(actor: User | None) -> tuple[str, ...]:
    """The tenant fields ``actor`` may change (all of them when the platform acts)."""
    if actor is None:
        return POLICY_FIELDS
    caller = access.require_caller(actor)
    if caller.is_operator:
        return OPERATOR_FIELDS
    if caller.is_admin:
        return tuple(f for f in POLICY_FIELDS if f != "rate_limits")
    return ()


@transaction.atomic
def do_update_tenant_policy(tenant: Tenant, changes: dict[str, Any], *, actor: User | None = None) -> Tenant:
    """Change a tenant's name, security policy (administrators) or quotas (operators)."""
    if actor is not None:
        tenant = access.access_by_id(actor, Tenant, tenant.pk, Action.CHANGE)
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown policy fields: {', '.join(sorted(unknown))}.")
    refused = set(changes) - set(policy_fields_for(actor))
    if refused:
        raise PermissionDenied(f"You may not change: {', '.join(sorted(refused))}.")
    diff = {k: [getattr(tenant, k), v] for k, v in changes.items() if getattr(tenant, k) != v}
    for key, value in changes.items():
        setattr(tenant, key, value)
    tenant.full_clean()
    # Only the changed columns: a full-row save would undo a concurrent suspension.
    tenant.save(update_fields=list(changes))
    if diff:
        audit.record("tenant.policy", tenant=tenant, target=tenant, changes=diff, actor=actor)
    return tenant


# --- roles -------------------------------------------------------------------------------


def _create_role_row(tenant: Tenant, name: str, kind: str, rights: list[str], description: str = "") -> Role:
    group = Group.objects.create(name=f"tenant-{tenant.pk}-role-{uuid.uuid4().hex}")
    role = Role(tenant=tenant, name=name, kind=kind, rights=rights, description=description, group=group)
    role.full_clean()
    role.save()
    return role


def _clean_rights(rights: Sequence[str]) -> list[str]:
    bad = [r for r in rights if r not in DEVICE_GROUP_RIGHTS]
    if bad:
        allowed = ", ".join(DEVICE_GROUP_RIGHTS)
        raise ValidationError({"rights": f"Unknown rights {', '.join(map(str, bad))}; choose from {allowed}."})
    return sorted(set(rights))


@transaction.atomic
def do_create_role(
    *, name: str, rights: Sequence[str] = (), description: str = "", actor: User | None, tenant: Tenant | None = None
) -> Role:
    """Create a custom role carrying device-group rights (none until given some)."""
    tenant = access.tenant_for_add(actor, Role, tenant)
    if Role.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"A role named '{name}' already exists."})
    role = _create_role_row(tenant, name, Role.Kind.CUSTOM, _clean_rights(rights), description)
    audit.record("role.create", tenant=tenant, target=role, data={"rights": role.rights}, actor=actor)
    return role


@transaction.atomic
def do_update_role(role: Role, changes: dict[str, Any], *, actor: User | None) -> Role:
    """Rename a custom role or change its rights; built-in roles are fixed."""
    if actor is not None:
        role = access.access_by_id(actor, Role, role.pk, Action.CHANGE)
    if role.is_builtin:
        raise ValidationError("Built-in roles cannot be changed.")
    if "rights" in changes:
        changes["rights"] = _clean_rights(changes["rights"])
    diff = {k: [getattr(role, k), v] for k, v in changes.items() if getattr(role, k) != v}
    for key, value in changes.items():
        setattr(role, key, value)
    role.full_clean()
    role.save(update_fields=list(changes))
    if diff:
        audit.record("role.update", tenant=role.tenant_id, target=role, changes=diff, actor=actor)
    return role


@transaction.atomic
def do_delete_role(role: Role, *, actor: User | None) -> None:
    """Delete a custom role nobody holds any more."""
    if actor is not None:
        role = access.access_by_id(actor, Role, role.pk, Action.DELETE)
    if role.is_builtin:
        raise ValidationError("Built-in roles cannot be deleted.")
    if role.members.exists():
        raise ValidationError("The role still has members; give them another role first.")
    audit.record("role.delete", tenant=role.tenant_id, target=role, actor=actor)
    group = role.group
    role.delete()
    group.delete()


# --- users -------------------------------------------------------------------------------


def builtin_role(tenant: Tenant, kind: str) -> Role:
    """The tenant's built-in role of ``kind``."""
    try:
        return Role.objects.get(tenant=tenant, kind=kind)
    except Role.DoesNotExist:
        raise ValidationError({"role": f"Tenant '{tenant.slug}' has no '{kind}' role."}) from None


def _check_role_fits(tenant: Tenant, role: Role) -> None:
    if role.tenant_id != tenant.pk:
        raise ValidationError({"role": "Unknown role."})
    if role.kind not in access.role_kinds_for(tenant):
        kind = "provider" if tenant.is_provider else "customer"
        raise ValidationError({"role": f"Role '{role.name}' cannot be held in a {kind} tenant."})


# One answer whether the address belongs to someone in the caller's tenant or in another:
# e-mail addresses are unique across the platform (they are the login), and which other
# tenants' users exist is none of the caller's business.
EMAIL_IN_USE = "This e-mail address cannot be used for a new user. Choose another, or ask the person which one to use."


@audit.atomic_keeping_refusals
def do_create_user(
    *,
    email: str,
    role: Role,
    password: str | None = None,
    full_name: str = "",
    actor: User | None,
    tenant: Tenant | None = None,
) -> User:
    """Create a user in the actor's tenant (or ``tenant`` when the platform acts).

    Whether the address is taken is checked last, after everything else about the request
    was found valid: a request that is wrong anyway never learns it.
    """
    tenant = access.tenant_for_add(actor, User, tenant)
    _check_role_fits(tenant, role)
    email = User.objects.normalize_email(email).lower()
    user = User(email=email, full_name=full_name, tenant=tenant, role=role)
    if password is None:
        user.set_unusable_password()
    else:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
        user.set_password(password)
    user.full_clean(exclude=["password"], validate_unique=False)
    taken = audit.Refusal(
        ValidationError({"email": EMAIL_IN_USE}),
        "user.create_refused",
        tenant=tenant,
        data={"email": email, "reason": "address in use"},
        actor=actor,
    )
    if User.objects.filter(email__iexact=email).exists():
        raise taken
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same address, created concurrently
        raise taken from None
    user.groups.set([role.group])
    audit.record("user.create", tenant=tenant, target=user, data={"role": role.name}, actor=actor)
    return user


@transaction.atomic
def do_change_user_role(user: User, role: Role, *, actor: User | None) -> User:
    """Give ``user`` another role; the mirror in guardian's group table changes with it."""
    if actor is not None:
        user = access.access_by_id(actor, User, user.pk, Action.CHANGE)
        if user.pk == actor.pk:
            raise ValidationError({"role": "You cannot change your own role."})
    _check_role_fits(user.tenant, role)
    old = user.role
    User.objects.filter(pk=user.pk).update(role=role)
    user.role = role
    user.groups.set([role.group])
    audit.record(
        "user.role",
        tenant=user.tenant_id,
        target=user,
        changes={"role": [str(old) if old else None, role.name]},
        actor=actor,
    )
    return user


@transaction.atomic
def do_update_user(user: User, changes: dict[str, Any], *, actor: User | None) -> User:
    """Change a user's name or (de)activate them. Deactivation also revokes their tokens."""
    if actor is not None:
        user = access.access_by_id(actor, User, user.pk, Action.CHANGE)
        if user.pk == actor.pk and changes.get("is_active") is False:
            raise ValidationError({"is_active": "You cannot deactivate yourself."})
    unknown = set(changes) - {"full_name", "is_active"}
    if unknown:
        raise ValidationError(f"Unknown user fields: {', '.join(sorted(unknown))}.")
    diff = {k: [getattr(user, k), v] for k, v in changes.items() if getattr(user, k) != v}
    ending = changes.get("is_active") is False and user.is_active
    User.objects.filter(pk=user.pk).update(
        **changes, **({"session_epoch": models.F("session_epoch") + 1} if ending else {})
    )
    for key, value in changes.items():
        setattr(user, key, value)
    if changes.get("is_active") is False:
        # Deactivation ends every session and token for good: reactivating a user later
        # revives neither, they log in again.
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
    if diff:
        audit.record("user.update", tenant=user.tenant_id, target=user, changes=diff, actor=actor)
    return user


@transaction.atomic
def do_set_password(user: User, password: str, *, actor: User | None) -> None:
    """Set a new password after Django's validators (min. 12 characters, not common)."""
    if actor is not None:
        user = access.access_by_id(actor, User, user.pk, Action.CHANGE)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None
    user.set_password(password)
    user.save(update_fields=["password"])
    two_factor.forget_pending_enrolments(user)
    audit.record("user.password", tenant=user.tenant_id, target=user, actor=actor)


@transaction.atomic
def do_reset_2fa(user: User, *, actor: User | None) -> None:
    """Remove a user's authenticator and backup codes; they enrol again at next login."""
    if actor is not None:
        user = access.access_by_id(actor, User, user.pk, Action.CHANGE)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    audit.record("2fa.reset", tenant=user.tenant_id, target=user, actor=actor)


# --- API tokens ----------------------------------------------------------------------------


@transaction.atomic
def do_create_api_token(
    *, user: User, name: str, scope: str = ApiToken.Scope.READ, days: int | None = None, actor: User | None
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` (the actor themself); returns it and its secret, shown once."""
    if actor is not None:
        access.require_add(actor, ApiToken)
        if actor.pk != user.pk:
            raise PermissionDenied("Tokens are created by their owner.")
    holder = access.caller_for(user)
    if holder is None:
        raise ValidationError("This account has no access and cannot hold API tokens.")
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": f"Scope must be one of: {', '.join(ApiToken.Scope.values)}."})
    if scope == ApiToken.Scope.WRITE and not holder.may_write:
        raise ValidationError({"scope": "Your role cannot write, so your tokens are read-only."})
    max_days = user.tenant.api_token_max_days
    if days is None:
        days = min(settings.API_TOKEN_DEFAULT_DAYS, max_days)
    if not 1 <= days <= max_days:
        raise ValidationError({"days": f"Tokens live between 1 and {max_days} days in this tenant."})
    if not name.strip():
        raise ValidationError({"name": "A token needs a name."})
    secret = new_secret(settings.API_TOKEN_PREFIX)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip(),
        scope=scope,
        prefix=shown_prefix(secret),
        digest=secret_digest(secret),
        expires_at=timezone.now() + timedelta(days=days),
    )
    audit.record(
        "token.create",
        tenant=user.tenant_id,
        target=token,
        data={"scope": scope, "expires_at": token.expires_at.isoformat(), "owner": user.email},
        actor=actor,
    )
    return token, secret


@transaction.atomic
def do_revoke_api_token(token: ApiToken, *, actor: User | None) -> ApiToken:
    """Revoke a token at once; its next request gets 401."""
    if actor is not None:
        token = access.access_by_id(actor, ApiToken, token.pk, Action.DELETE)
    now = timezone.now()
    # Guarded in the UPDATE: of two concurrent revocations, one records it.
    if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
        token.revoked_at = now
        audit.record("token.revoke", tenant=token.user.tenant_id, target=token, actor=actor)
    return token


# --- support grants ----------------------------------------------------------------------

SUPPORT_LINK_PREFIX = "cot_sgl_"


def support_link(secret: str) -> str:
    """The URL a customer administrator hands to platform support.

    The secret is the fragment: browsers never send it, so it stays out of access logs;
    the page posts it (``tenants.views.support``).
    """
    return f"{settings.SITE_URL.rstrip('/')}/support/enter/#{secret}"


@transaction.atomic
def do_create_support_grant(
    *,
    actor: User,
    reason: str,
    duration_hours: int,
    scope: str = "read",
    engineer_email: str = "",
) -> tuple[SupportGrant, str]:
    """Consent to support access for at most 24 hours; returns the grant and its link (shown once).

    The duration has no default: the customer chooses how long, and least is best.
    """
    tenant = access.tenant_for_add(actor, SupportGrant, None)
    if not 1 <= duration_hours <= SupportGrant.MAX_HOURS:
        raise ValidationError({"duration_hours": f"Support access lasts 1 to {SupportGrant.MAX_HOURS} hours."})
    if scope not in SupportGrant.Scope.values:
        raise ValidationError({"scope": f"Scope must be one of: {', '.join(SupportGrant.Scope.values)}."})
    if not reason.strip():
        raise ValidationError({"reason": "Give a reason or ticket reference."})
    secret = new_secret(SUPPORT_LINK_PREFIX)
    now = timezone.now()
    grant = SupportGrant(
        tenant=tenant,
        created_by=actor,
        created_at=now,
        duration_hours=duration_hours,
        expires_at=now + timedelta(hours=duration_hours),
        scope=scope,
        reason=reason.strip(),
        engineer_email=engineer_email.strip().lower(),
        link_digest=secret_digest(secret),
    )
    grant.full_clean(exclude=["link_digest", "expires_at"])
    grant.save()
    audit.record(
        "support_grant.create",
        tenant=tenant,
        target=grant,
        data={"scope": scope, "expires_at": grant.expires_at.isoformat(), "engineer": grant.engineer_email or None},
        actor=actor,
    )
    return grant, support_link(secret)


def _end_support_sessions(grant: SupportGrant) -> int:
    from django.contrib.sessions.models import Session

    keys = list(grant.sessions.values_list("session_key", flat=True))
    deleted, _ = Session.objects.filter(session_key__in=keys).delete()
    grant.sessions.all().delete()
    return deleted


@transaction.atomic
def do_revoke_support_grant(grant: SupportGrant, *, actor: User) -> SupportGrant:
    """Revoke at once; the engineer's next request is refused."""
    grant = access.access_by_id(actor, SupportGrant, grant.pk, Action.CHANGE)
    now = timezone.now()
    if SupportGrant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=actor):
        grant.revoked_at, grant.revoked_by = now, actor
        ended = _end_support_sessions(grant)
        audit.record(
            "support_grant.revoke", tenant=grant.tenant_id, target=grant, data={"sessions_ended": ended}, actor=actor
        )
    return grant


class SupportLinkRefused(Exception):
    """The link cannot be used by this engineer (unknown, used by another, expired, revoked)."""


@audit.atomic_keeping_refusals
def do_open_support_grant(secret: str, *, engineer: User, session_key: str) -> SupportGrant:
    """Bind the grant to the engineer on first use and register the session opened through it.

    Every refusal looks the same to the caller, so a link cannot be probed; a refusal of
    a real grant's link (another engineer's, expired, revoked) stays in the customer's trail.
    """
    grant = (
        SupportGrant.objects.select_for_update()
        .select_related("tenant")
        .filter(link_digest=secret_digest(secret))
        .first()
    )
    role = engineer.role
    now = timezone.now()
    refused = (
        grant is None
        or role is None
        or role.kind != Role.Kind.SUPPORT
        or not engineer.tenant.is_provider
        or grant.revoked_at is not None
        or now >= grant.expires_at
        or (grant.engineer_id is not None and grant.engineer_id != engineer.pk)
        or (grant.engineer_email and grant.engineer_email != engineer.email.lower())
    )
    if refused:
        error = SupportLinkRefused("This support link is not valid for you.")
        if grant is None:
            raise error
        raise audit.Refusal(
            error,
            "support_grant.refused",
            tenant=grant.tenant_id,
            target=grant,
            data={"engineer": engineer.email},
            actor=engineer,
        )
    assert grant is not None
    if grant.engineer_id is None:
        grant.engineer, grant.bound_at = engineer, now
        SupportGrant.objects.filter(pk=grant.pk).update(engineer=engineer, bound_at=now)
    grant.sessions.create(session_key=session_key)
    access.enter_support_grant(engineer, grant)  # the opening itself is the grant's first activity
    audit.record(
        "support_grant.open", tenant=grant.tenant_id, target=grant, data={"engineer": engineer.email}, actor=engineer
    )
    return grant


def do_expire_support_grants() -> int:
    """Mark grants past their expiry, end their sessions, audit and tell the administrators.

    Access already stopped at expiry (the access layer checks every request); this job
    only records it and cleans up. Idempotent: each grant is processed once.
    """
    from django.core.mail import send_mail

    processed = 0
    now = timezone.now()
    for grant_id in SupportGrant.objects.due_for_expiry(now).values_list("pk", flat=True):
        with transaction.atomic():
            grant = SupportGrant.objects.select_for_update(skip_locked=True).filter(pk=grant_id).first()
            if grant is None or grant.expiry_processed_at is not None:
                continue
            SupportGrant.objects.filter(pk=grant.pk).update(expiry_processed_at=now)
            ended = _end_support_sessions(grant)
            audit.record("support_grant.expire", tenant=grant.tenant_id, target=grant, data={"sessions_ended": ended})
            recipients = list(
                User.objects.filter(
                    tenant=grant.tenant_id, role__kind=Role.Kind.ADMINISTRATOR, is_active=True
                ).values_list("email", flat=True)
            )
            subject = f"cot: support access ended ({grant.reason})"
            body = (
                f"The support access you granted on {grant.created_at:%Y-%m-%d %H:%M} UTC "
                f"({grant.scope}, reason: {grant.reason}) expired at {grant.expires_at:%Y-%m-%d %H:%M} UTC.\n"
                "Its activity stays visible in the cockpit under Support grants."
            )
            transaction.on_commit(partial(send_mail, subject, body, None, recipients))
            processed += 1
    return processed
