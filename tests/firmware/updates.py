"""Scenes for the device update protocol: signed images, devices with credentials, running rollouts.

The engine (another branch) starts rollouts and waves; here they are put into the states it
would have set with the ORM, after creating and planning them with the real services.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from devices.models import Device, DeviceType
from devices.services.registry import do_update_device
from firmware import selectors, signing
from firmware.models import FirmwareImage, Rollout, RolloutWave, SigningKey
from firmware.services import (
    do_add_signing_key,
    do_create_rollout,
    do_plan_rollout,
    do_release_firmware_image,
    do_update_firmware_policy,
    do_upload_firmware_image,
)
from tenants.models import Tenant
from tests.factories import make_device

_serial = itertools.count(1)


def content_for(version: str, size: int = 3000) -> bytes:
    """Distinct, non-repeating bytes for an image (so a wrong range is noticed)."""
    seed = f"firmware {version} #{next(_serial)}".encode()
    blocks: list[bytes] = []
    block = seed
    while sum(len(b) for b in blocks) < size:
        block = hashlib.sha256(block).digest()
        blocks.append(block)
    return b"".join(blocks)[:size]


def signed_image(
    tenant: Tenant,
    device_type: DeviceType,
    *,
    version: str = "2.0.0",
    security_version: int = 1,
    keypair: tuple[bytes, str] | None = None,
    content: bytes | None = None,
) -> FirmwareImage:
    """A released image signed with ``keypair`` (its public key registered once), or unsigned without one."""
    content = content if content is not None else content_for(version)
    image = do_upload_firmware_image(
        file=SimpleUploadedFile("fw.bin", content),
        sha256=hashlib.sha256(content).hexdigest(),
        version=version,
        security_version=security_version,
        device_types=[device_type],
        actor=None,
        tenant=tenant,
    )
    if keypair is None:
        do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=tenant)
        return do_release_firmware_image(image, actor=None)
    private, public = keypair
    raw = signing.parse_public_key(public)
    key_id = signing.key_id(raw)
    if not SigningKey.objects.filter(tenant=tenant, key_id=key_id).exists():
        do_add_signing_key(name=f"key-{key_id}", public_key=public, actor=None, tenant=tenant)
    signature = signing.sign(private, selectors.manifest_for(image))
    return do_release_firmware_image(image, signature=signature, key_id=key_id, actor=None)


def device_of(tenant: Tenant, device_type: DeviceType, *, version: str = "1.0.0") -> tuple[Device, str]:
    """A registered device of ``device_type`` running ``version``, and its credential."""
    device, credential = make_device(tenant)
    device = do_update_device(device, {"type": device_type, "firmware_version": version}, actor=None)
    return device, credential


def planned(image: FirmwareImage, actor: Any, waves: list[dict[str, Any]] | None = None, **options: Any) -> Rollout:
    """A rollout of ``image`` created and planned through the services (``ready``)."""
    rollout = do_create_rollout(
        image=image, name=f"Rollout {next(_serial)}", waves=waves or [{}], actor=actor, **options
    )
    rollout = do_plan_rollout(rollout, actor=actor)
    if rollout.status == Rollout.Status.PLANNING:  # the engine branch may plan in a Celery job
        # Not on this branch yet: looked up by name, so this module type-checks with and without it.
        importlib.import_module("firmware.tasks").plan_rollout(rollout.pk)
        rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.READY, rollout.status
    return rollout


def run(rollout: Rollout, *, waves: dict[int, str] | None = None) -> Rollout:
    """``rollout`` ``running`` with its first wave ``active`` (or the given wave states), as the engine does it."""
    now = timezone.now()
    Rollout.objects.filter(pk=rollout.pk).update(status=Rollout.Status.RUNNING, started_at=now)
    for index, status in (waves or {0: RolloutWave.Status.ACTIVE}).items():
        RolloutWave.objects.filter(rollout=rollout, index=index).update(status=status, started_at=now)
    rollout.refresh_from_db()
    return rollout


def running(image: FirmwareImage, actor: Any, **options: Any) -> Rollout:
    """Created, planned and running, one wave, active."""
    return run(planned(image, actor, **options))
