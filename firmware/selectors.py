"""Reads about firmware that services, views and the cockpit share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Count, QuerySet

from cot.database.scope import cross_tenant
from devices.models import Device
from firmware import signing
from firmware.models import FirmwareImage, FirmwareImageType, FirmwarePolicy
from tenants.models import Action, Tenant, User


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
    with cross_tenant("firmware.blob_in_use"):
        return FirmwareImage.objects.filter(sha256=sha256).exists()


def rollout_devices(
    *,
    tenant: Tenant | int,
    image: FirmwareImage,
    target_groups: Sequence[int] = (),
    target_types: Sequence[int] = (),
    target_versions: Sequence[str] = (),
    target_devices: Sequence[int] = (),
    actor: User | None,
) -> QuerySet[Device]:
    """The devices a rollout of ``image`` with this target spec reaches, as one lazy queryset.

    Only the tenant's devices the actor may change (``actor=None``, the platform: the
    whole tenant), of the image's device types, never decommissioned ones; each non-empty
    list narrows the selection further. Ids of other tenants' groups or devices match
    nothing. Planning uses its SQL as the source of one INSERT … SELECT; the preview
    counts it. Never evaluated here.
    """
    devices = Device.objects.all() if actor is None else Device.objects.restrict(actor, Action.CHANGE)
    devices = devices.filter(
        tenant=getattr(tenant, "pk", tenant),
        type__in=FirmwareImageType.objects.filter(image=image.pk).values("device_type"),
    ).exclude(status=Device.Status.DECOMMISSIONED)
    if target_groups:
        devices = devices.filter(group__in=list(target_groups))
    if target_types:
        devices = devices.filter(type__in=list(target_types))
    if target_versions:
        devices = devices.filter(firmware_version__in=list(target_versions))
    if target_devices:
        devices = devices.filter(pk__in=list(target_devices))
    return devices.order_by()


def rollout_preview(devices: QuerySet[Device]) -> list[dict[str, Any]]:
    """Counts of ``devices`` (from ``rollout_devices``) per group and type: ``{group, type, devices}`` rows."""
    rows = devices.values("group", "type").annotate(devices=Count("pk")).order_by("group", "type")
    return [{"group": row["group"], "type": row["type"], "devices": row["devices"]} for row in rows]
