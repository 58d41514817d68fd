"""Firmware images, the device types they fit, and the public keys that sign them.

An image's bytes live once in content-addressed storage (``firmware.storage``), named by
their SHA-256; rows carry the hash, never a path, so identical uploads share one file and
a row can never point at bytes other than those it was checked against.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models

from devices.models import DeviceType
from tenants.models import Tenant
from tenants.querysets import TenantQuerySet

# Semantic Versioning 2.0.0, the regular expression semver.org publishes (named groups dropped).
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)
SHA256_HEX = r"^[0-9a-f]{64}\Z"
# Manifests are RFC 8785 JSON, whose integers must be exact in an IEEE double.
MAX_SAFE_INTEGER = 2**53 - 1


class SigningKey(models.Model):
    """An Ed25519 public key a tenant signs firmware with; the private half never reaches the server.

    Several keys may be active at once (rotation: add the new key, sign with it, revoke
    the old one). Revoking stops new releases signed by the key; what it signed before
    stays released and its rows keep pointing at it, so a key row is never deleted.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="firmware_keys")
    name = models.CharField(max_length=100)
    public_key = models.CharField(max_length=44, help_text="Base64 of the raw 32-byte Ed25519 public key.")
    key_id = models.CharField(max_length=16, help_text="The first 16 hex digits of the key's SHA-256.")
    created_by = models.ForeignKey("tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key_id"], name="firmware_key_unique_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "name"], name="firmware_key_unique_name"),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="firmware_key_tenant_row"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class FirmwareImage(models.Model):
    """One firmware build for some of a tenant's device types.

    ``security_version`` is the anti-rollback counter: devices never accept an image whose
    security version is below the one they run, whatever the marketing ``version`` says.
    A released image is immutable; drafts may still change and be deleted.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        RELEASED = "released"
        WITHDRAWN = "withdrawn"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="firmware_images")
    version = models.CharField(
        max_length=64,
        validators=[RegexValidator(SEMVER, "Use a semantic version such as 1.4.2 or 2.0.0-rc.1.")],
    )
    security_version = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(2**31 - 1)],
        help_text="Anti-rollback counter: devices refuse images below the security version they run.",
    )
    device_types: models.ManyToManyField[DeviceType, FirmwareImageType] = models.ManyToManyField(
        DeviceType, through="FirmwareImageType", related_name="firmware_images"
    )
    size = models.PositiveBigIntegerField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False, validators=[RegexValidator(SHA256_HEX)])
    release_notes = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Devices refuse the image after this time.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    # Frozen at release: what was signed stays what devices are offered, even if a device
    # type is renamed or the tenant's slug changes later.
    manifest = models.JSONField(null=True, blank=True, editable=False)
    signature = models.CharField(max_length=100, blank=True, editable=False)
    signed_by = models.ForeignKey(
        SigningKey, on_delete=models.PROTECT, null=True, blank=True, editable=False, related_name="images"
    )
    created_by = models.ForeignKey("tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "-created_at"]
        indexes = [models.Index(fields=["sha256"], name="firmware_image_sha256")]
        constraints = [
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="firmware_image_tenant_row"),
        ]

    def __str__(self) -> str:
        return f"{self.version}"


class FirmwareImageType(models.Model):
    """That an image fits a device type; carries the version so it is unique per type in the database."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey(FirmwareImage, on_delete=models.CASCADE, related_name="type_links")
    device_type = models.ForeignKey(DeviceType, on_delete=models.PROTECT, related_name="+")
    version = models.CharField(max_length=64)

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device_type", "version"], name="firmware_version_unique_per_type"),
            models.UniqueConstraint(fields=["image", "device_type"], name="firmware_image_type_once"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} fits {self.device_type_id}"
