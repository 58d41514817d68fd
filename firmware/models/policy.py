"""A tenant's firmware policy, kept by the firmware app so that the tenants app never changes for it."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tenants.models import Tenant
from tenants.querysets import TenantQuerySet

MIB = 1024 * 1024
DEFAULT_MAX_IMAGE_BYTES = 256 * MIB


class FirmwarePolicy(models.Model):
    """What a tenant demands of its firmware; a tenant without a row gets the defaults (``firmware.selectors``).

    The defaults are the safe choice: signatures are required until an administrator
    turns them off, so a tenant that never opened this page cannot release unsigned code.
    """

    tenant = models.OneToOneField(Tenant, on_delete=models.PROTECT, primary_key=True, related_name="firmware_policy")
    require_signatures = models.BooleanField(
        "release signed firmware only",
        default=True,
        help_text="Release an image only with a valid signature by one of your active signing keys.",
    )
    max_image_bytes = models.PositiveBigIntegerField(
        "largest image (bytes)",
        default=DEFAULT_MAX_IMAGE_BYTES,
        validators=[MinValueValidator(MIB), MaxValueValidator(4096 * MIB)],
        help_text="Uploads above this size are refused. The platform's own limit applies too.",
    )

    standard_users_roll_out = models.BooleanField(
        "Standard users may run rollouts",
        default=False,
        help_text="Standard users with the change right on every targeted device group may create, plan, start, "
        "pause, resume, cancel and retry rollouts of those groups. Administrators always may.",
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "firmware policies"

    def __str__(self) -> str:
        return f"Firmware policy of {self.tenant_id}"
