"""Firmware images: upload (hashed while streamed), change a draft, release (signed), withdraw, delete.

The bytes go to content-addressed storage after every check has passed and the rows are
written, as the last step of the transaction; if the transaction fails after that, bytes
this upload added are removed again (unless another image names them), so a refused
upload leaves nothing behind. One caveat: a caller's own outer transaction that rolls
back later leaves the bytes unreferenced. They are never served (rows name what is
offered), and the next upload of the same bytes reuses them.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

import audit
from cot.exceptions import Conflict
from cot.updates import save_changes
from devices.models import DeviceType
from firmware import selectors, signing, storage
from firmware.models import FirmwareImage, FirmwareImageType, Rollout, SigningKey
from firmware.states import ROLLOUT_TERMINAL
from tenants.access import access_by_id, tenant_for_add
from tenants.models import Action, Tenant, User

DRAFT_FIELDS = ("release_notes", "expires_at", "security_version")
logger = logging.getLogger(__name__)
# Key of the advisory locks on one blob's bytes ("fwb").
_BLOB_LOCK = 0x667762


def do_upload_firmware_image(
    *,
    file: UploadedFile,
    sha256: str,
    version: str,
    device_types: Sequence[DeviceType],
    security_version: int = 0,
    release_notes: str = "",
    expires_at: datetime | None = None,
    expected_sha256: str | None = None,
    actor: User | None,
    tenant: Tenant | None = None,
) -> FirmwareImage:
    """Store an uploaded image as a draft of the caller's tenant.

    ``sha256`` is what the server computed while the upload streamed in
    (``firmware.uploads``); ``expected_sha256``, if the client sent one, must match it.
    """
    with _bytes_removed_on_failure(sha256) as store, transaction.atomic():
        tenant = tenant_for_add(actor, FirmwareImage, tenant)
        size = int(file.size or 0)
        if expected_sha256 is not None and expected_sha256.strip().lower() != sha256:
            raise ValidationError(
                {"sha256": f"The file you sent has SHA-256 {sha256}, not {expected_sha256}; nothing was stored."}
            )
        if size == 0:
            raise ValidationError({"file": "The file is empty."})
        limit = selectors.policy_for(tenant).max_image_bytes
        if size > limit:
            raise ValidationError({"file": f"The image has {size} bytes; your tenant's limit is {limit} bytes."})
        types = _own_device_types(device_types, tenant)
        image = FirmwareImage(
            tenant=tenant,
            version=version,
            security_version=security_version,
            size=size,
            sha256=sha256,
            release_notes=release_notes,
            expires_at=expires_at,
            created_by=actor,
        )
        image.full_clean()
        _refuse_taken_version(version, types)
        _lock_blob(sha256)
        image.save()
        try:
            with transaction.atomic():
                FirmwareImageType.objects.bulk_create(
                    FirmwareImageType(tenant=tenant, image=image, device_type=t, version=version) for t in types
                )
        except IntegrityError:  # a concurrent upload took the version first
            _refuse_taken_version(version, types)
            raise
        audit.record(
            "firmware.upload",
            tenant=tenant,
            target=image,
            data={"version": version, "sha256": sha256, "size": size, "device_types": [t.pk for t in types]},
            actor=actor,
        )
        # Last: every check has passed and the rows are written.
        store(file)
    return image


@contextmanager
def _bytes_removed_on_failure(sha256: str) -> Iterator[Callable[[UploadedFile], None]]:
    """Yield a function that stores an upload's bytes; if the block fails after it, remove them again.

    Bytes another image names stay (they were there before, or another upload needs them).
    """
    added = False

    def store(file: UploadedFile) -> None:
        nonlocal added
        added = storage.store_blob(file, sha256)

    try:
        yield store
    except BaseException:
        if added:
            _delete_blob_unless_used(sha256)
        raise


def _lock_blob(sha256: str) -> None:
    """Serialise writers of one blob until commit: an upload storing it, a delete removing it.

    Without it a delete could check "unused" while another tenant's upload of the same
    bytes has found them present but not yet committed its row.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_BLOB_LOCK, int(sha256[:8], 16) - 2**31])


def _delete_blob_unless_used(sha256: str) -> None:
    with transaction.atomic():
        _lock_blob(sha256)
        if not selectors.blob_in_use(sha256):
            storage.delete_blob(sha256)


def _own_device_types(device_types: Sequence[DeviceType], tenant: Tenant) -> list[DeviceType]:
    types = list(dict.fromkeys(device_types))
    if not types:
        raise ValidationError({"device_types": "Name at least one device type the image fits."})
    if any(t.tenant_id != tenant.pk for t in types):
        # The same answer as for an id that exists nowhere.
        raise ValidationError({"device_types": "Unknown device type."})
    return types


def _refuse_taken_version(version: str, types: Sequence[DeviceType]) -> None:
    taken = FirmwareImageType.objects.filter(device_type__in=types, version=version).select_related("device_type")
    names = sorted(str(link.device_type) for link in taken)
    if names:
        raise ValidationError({"version": f"Version {version} exists already for {', '.join(names)}."})


@transaction.atomic
def do_update_firmware_image(image: FirmwareImage, changes: dict[str, Any], *, actor: User | None) -> FirmwareImage:
    """Change a draft's release notes, expiry or security version; a released image never changes."""
    image = _locked(image, actor, Action.CHANGE)
    unknown = sorted(set(changes) - set(DRAFT_FIELDS))
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "This field cannot be changed."))
    if image.status != FirmwareImage.Status.DRAFT:
        raise Conflict(f"Image {image.version} is {image.status}; only a draft can change.")
    return save_changes(image, changes, audit_event="firmware.update", tenant=image.tenant_id, actor=actor)


@transaction.atomic
def do_release_firmware_image(
    image: FirmwareImage, *, signature: str = "", key_id: str = "", actor: User | None
) -> FirmwareImage:
    """Release a draft; with a signature by an active key of the tenant, which its policy may demand.

    The manifest (``firmware.selectors.manifest_for``) is frozen with the release, so what
    was signed is what devices are offered.
    """
    image = _locked(image, actor, Action.CHANGE)
    if image.status != FirmwareImage.Status.DRAFT:
        raise Conflict(f"Image {image.version} is {image.status}; only a draft can be released.")
    if image.expires_at is not None and image.expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The image has expired; set a later expiry first."})
    manifest = selectors.manifest_for(image)
    key: SigningKey | None = None
    if signature or key_id:
        # Locked: a revocation committing meanwhile cannot let this release through.
        key = (
            SigningKey.objects.select_for_update()
            .filter(tenant=image.tenant_id, key_id=key_id, revoked_at__isnull=True)
            .first()
        )
        if key is None:
            raise ValidationError({"key_id": "None of your active signing keys has this id."})
        if not signing.verify(_raw(key), manifest, signature):
            raise ValidationError({"signature": "The signature does not match this image's manifest and that key."})
        signature = signing.canonical_signature(signature)
    elif selectors.policy_for(image.tenant).require_signatures:
        raise ValidationError({"signature": "Your firmware policy requires a signature: sign this image's manifest."})
    now = timezone.now()
    # Guarded in the UPDATE, as every state change: of two concurrent releases, one wins.
    released = FirmwareImage.objects.filter(pk=image.pk, status=FirmwareImage.Status.DRAFT).update(
        status=FirmwareImage.Status.RELEASED,
        manifest=manifest,
        signature=signature if key is not None else "",
        signed_by=key,
        released_at=now,
    )
    if not released:
        raise Conflict(f"Image {image.version} changed meanwhile; reload it.")
    image.refresh_from_db()
    audit.record(
        "firmware.release",
        tenant=image.tenant_id,
        target=image,
        data={"version": image.version, "sha256": image.sha256, "key_id": key.key_id if key else None},
        actor=actor,
    )
    return image


@transaction.atomic
def do_withdraw_firmware_image(image: FirmwareImage, *, actor: User | None) -> FirmwareImage:
    """Stop offering a released image to devices; it stays on record (and in storage).

    Refused (409, naming them) while a rollout that is not over uses it: cancel those
    first. The image row is locked, and creating a rollout locks it too, so no rollout
    of it can appear between the check and the withdrawal.
    """
    image = _locked(image, actor, Action.CHANGE)
    _refuse_if_rolled_out(image, "withdrawn", Rollout.objects.exclude(status__in=ROLLOUT_TERMINAL))
    withdrawn = FirmwareImage.objects.filter(pk=image.pk, status=FirmwareImage.Status.RELEASED).update(
        status=FirmwareImage.Status.WITHDRAWN
    )
    if not withdrawn:
        raise Conflict(f"Image {image.version} is {image.status}; only a released image can be withdrawn.")
    image.status = FirmwareImage.Status.WITHDRAWN
    audit.record(
        "firmware.withdraw", tenant=image.tenant_id, target=image, data={"version": image.version}, actor=actor
    )
    return image


def do_delete_firmware_image(image: FirmwareImage, *, actor: User | None) -> None:
    """Delete a draft or a withdrawn image; its bytes go too unless another image names them."""
    with transaction.atomic():
        image = _locked(image, actor, Action.DELETE)
        if image.status == FirmwareImage.Status.RELEASED:
            raise Conflict(f"Image {image.version} is released; withdraw it before deleting it.")
        # Rollouts are the record of what ran where: an image one names stays.
        _refuse_if_rolled_out(image, "deleted", Rollout.objects.all())
        audit.record(
            "firmware.delete",
            tenant=image.tenant_id,
            target=image,
            data={"version": image.version, "sha256": image.sha256},
            actor=actor,
        )
        sha256 = image.sha256
        image.delete()
    try:
        _delete_blob_unless_used(sha256)
    except OSError:
        # The row is gone (committed); bytes no image names are never served, and the next
        # delete or upload of the same bytes takes them up again. Not worth a 500.
        logger.warning("Could not remove unreferenced firmware bytes %s", sha256, exc_info=True)


def _refuse_if_rolled_out(image: FirmwareImage, verb: str, rollouts: QuerySet[Rollout]) -> None:
    """``Conflict`` naming (up to five of) the rollouts of ``image`` in ``rollouts``."""
    names = list(rollouts.filter(image=image).order_by("pk").values_list("name", "status")[:6])
    if names:
        listed = ", ".join(f"{name} ({status})" for name, status in names[:5]) + (", …" if len(names) > 5 else "")
        raise Conflict(f"Image {image.version} cannot be {verb}: rollouts use it: {listed}.")


def _locked(image: FirmwareImage, actor: User | None, action: str) -> FirmwareImage:
    """The image, locked for this transaction, if ``actor`` may ``action`` it (404 alike otherwise)."""
    if actor is not None:
        image = access_by_id(actor, FirmwareImage, image.pk, action)
    return FirmwareImage.objects.select_for_update().select_related("tenant").get(pk=image.pk)


def _raw(key: SigningKey) -> bytes:
    try:
        return base64.b64decode(key.public_key, validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - stored by do_add_signing_key only
        return b""
