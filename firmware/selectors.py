"""Reads about firmware that services, views and the cockpit share."""

from __future__ import annotations

from typing import Any

from firmware import signing
from firmware.models import FirmwareImage, FirmwarePolicy
from tenants.models import Tenant


def policy_for(tenant: Tenant) -> FirmwarePolicy:
    """The tenant's firmware policy; the defaults (signatures required) when it has none stored."""
    policy = FirmwarePolicy.objects.filter(tenant=tenant).first()
    return policy if policy is not None else FirmwarePolicy(tenant=tenant)


def manifest_for(image: FirmwareImage) -> dict[str, Any]:
    """What a signature of ``image`` covers: frozen at release, built from the row before.

    Operators sign exactly this (``GET /api/v1/firmware/{id}/manifest/``, then
    ``manage.py sign_firmware``); devices receive it with the signature and check both.
    """
    if image.manifest is not None:
        return dict(image.manifest)
    types = image.device_types.order_by().values_list("manufacturer", "model")
    return signing.build_manifest(
        tenant=image.tenant.slug,
        version=image.version,
        security_version=image.security_version,
        sha256=image.sha256,
        size=image.size,
        device_types=list(types),
        expires_at=image.expires_at,
    )


def blob_in_use(sha256: str) -> bool:
    """Whether any image of any tenant still names these bytes (they are stored once for all)."""
    return FirmwareImage.objects.filter(sha256=sha256).exists()
