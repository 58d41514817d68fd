"""Signing keys: a tenant's administrators register Ed25519 public keys and revoke them."""

from __future__ import annotations

import base64

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from cot.exceptions import Conflict
from firmware import signing
from firmware.models import SigningKey
from tenants.access import access_by_id, tenant_for_add
from tenants.models import Action, Tenant, User


@transaction.atomic
def do_add_signing_key(*, name: str, public_key: str, actor: User | None, tenant: Tenant | None = None) -> SigningKey:
    """Register a public key (PEM or base64 of the raw 32 bytes) under a name of the caller's choosing."""
    tenant = tenant_for_add(actor, SigningKey, tenant)
    try:
        raw = signing.parse_public_key(public_key)
    except signing.KeyProblem as exc:
        raise ValidationError({"public_key": str(exc)}) from None
    key_id = signing.key_id(raw)
    key = SigningKey(
        tenant=tenant, name=name, public_key=base64.b64encode(raw).decode(), key_id=key_id, created_by=actor
    )
    _refuse_duplicate(key)
    key.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            key.save()
    except IntegrityError:  # a concurrent registration of the same key or name won
        _refuse_duplicate(key)
        raise
    audit.record("firmware.key.add", tenant=tenant, target=key, data={"key_id": key_id, "name": name}, actor=actor)
    return key


def _refuse_duplicate(key: SigningKey) -> None:
    same = SigningKey.objects.filter(tenant=key.tenant_id, key_id=key.key_id).first()
    if same is not None:
        raise ValidationError({"public_key": f"This key is already registered as “{same.name}”."})
    if SigningKey.objects.filter(tenant=key.tenant_id, name=key.name).exists():
        raise ValidationError({"name": "A key with this name exists; choose another."})


@transaction.atomic
def do_revoke_signing_key(key: SigningKey, *, actor: User | None) -> SigningKey:
    """Stop accepting the key's signatures for new releases; what it signed before stays released."""
    if actor is not None:
        key = access_by_id(actor, SigningKey, key.pk, Action.DELETE)
    now = timezone.now()
    # Guarded in the UPDATE: of two concurrent revocations, one records it.
    if not SigningKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
        raise Conflict("This key is already revoked.")
    key.revoked_at = now
    audit.record("firmware.key.revoke", tenant=key.tenant_id, target=key, data={"key_id": key.key_id}, actor=actor)
    return key
