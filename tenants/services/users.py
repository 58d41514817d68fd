"""Writes to users.

A user's role is mirrored in guardian's group table and deactivation ends their sessions and
tokens, so these changes go through here and never through the model directly.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

import audit
from cot.database.scope import cross_tenant
from cot.updates import changed_fields
from tenants import access, two_factor
from tenants.models import Action, ApiToken, Role, Tenant, User


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
    with cross_tenant("users.email_taken"):
        in_use = User.objects.filter(email__iexact=email).exists()
    if in_use:
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
    # Not ``cot.updates.save_changes``: this write is one queryset UPDATE, which also moves the
    # session epoch in the same statement, and sends no save signals (so auditlog adds no
    # entry beside the trail's "user.update"); a model save would change both.
    diff = changed_fields(user, changes)
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
    """Remove a user's authenticator, backup codes and passkeys; they enrol again at next login."""
    if actor is not None:
        user = access.access_by_id(actor, User, user.pk, Action.CHANGE)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    WebAuthnCredential.objects.filter(user=user).delete()
    audit.record("2fa.reset", tenant=user.tenant_id, target=user, actor=actor)
