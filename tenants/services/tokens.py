"""Writes to API tokens.

Only a token's digest is stored: creation returns the secret, shown once, and nothing reads it
back later. Revocation is guarded in its UPDATE so concurrent revocations audit once.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from tenants import access
from tenants.models import Action, ApiToken, User
from tenants.tokens import new_secret, secret_digest, shown_prefix


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
