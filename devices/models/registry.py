"""The device registry. Device groups carry the per-object rights that devices inherit."""

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from tenants.models import Tenant
from tenants.querysets import TenantQuerySet


class DeviceGroup(models.Model):
    """A set of devices; the unit on which Standard and Business users are granted rights.

    Groups form a tree (``parent``) for navigation. Rights are deliberately not inherited
    down the tree: each group is granted explicitly, so moving a group never widens access.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="device_groups")
    parent = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="children")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="devices_group_unique_name"),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="devices_group_tenant_row"),
        ]

    def __str__(self) -> str:
        return self.name


class DeviceGroupUserPermission(UserObjectPermissionBase):
    """Guardian's direct foreign-key table: a right on one group granted to one user."""

    content_object = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="user_permissions")


class DeviceGroupRolePermission(GroupObjectPermissionBase):
    """Guardian's direct foreign-key table: a right on one group granted to a role's group."""

    content_object = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="role_permissions")


class DeviceType(models.Model):
    """A kind of device. A tenant's policy can allow registering certified types only."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="device_types")
    manufacturer = models.CharField(max_length=100)
    model = models.CharField(max_length=100)
    certified = models.BooleanField(default=False)
    certification_notes = models.TextField(blank=True)
    # Seconds between heartbeats; a device silent for twice this long counts as offline.
    heartbeat_interval = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)],
        help_text="Seconds, from 1 to a week.",
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "manufacturer", "model"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "manufacturer", "model"], name="devices_type_unique"),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="devices_type_tenant_row"),
        ]

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.model}"


class Device(models.Model):
    """A registered device with its one credential (stored as a keyed hash) and last known state."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        BLOCKED = "blocked"
        DECOMMISSIONED = "decommissioned"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="devices")
    external_id = models.CharField(max_length=64, help_text="Serial number, IMEI or MAC address.")
    name = models.CharField(max_length=200, blank=True)
    type = models.ForeignKey(DeviceType, on_delete=models.PROTECT, null=True, blank=True, related_name="devices")
    group = models.ForeignKey(DeviceGroup, on_delete=models.PROTECT, null=True, blank=True, related_name="devices")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    firmware_version = models.CharField(max_length=64, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    altitude = models.FloatField(null=True, blank=True)
    located_at = models.DateTimeField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    credential_digest = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    credential_prefix = models.CharField(max_length=16, blank=True, editable=False)
    credential_issued_at = models.DateTimeField(null=True, blank=True, editable=False)
    certificate_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the client certificate, if the device is pinned to one."
    )
    registered_at = models.DateTimeField(auto_now_add=True)
    decommissioned_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()
    secret_fields = ("credential_digest",)
    # Devices are created by registration, recorded as "device.credential_issue" naming the device.
    audit_creation_event = "device.credential_issue"

    class Meta:
        ordering = ["tenant", "external_id"]
        constraints = [
            # A decommissioned device's external id can be registered again as a new device.
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=~models.Q(status="decommissioned"),
                name="devices_device_unique_live_external_id",
            ),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="devices_device_tenant_row"),
        ]
        indexes = [
            models.Index(fields=["tenant", "group", "id"], name="devices_device_tenant_group"),
            models.Index(fields=["tenant", "status"], name="devices_device_tenant_status"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class DeviceRegistration(models.Model):
    """An external id an administrator expects; the device collects its credential once accepted.

    The device proves itself with the registration token, of which only a keyed hash is
    stored. ``blocked`` marks registrations that can never complete: those created
    before every registration had a token, and those older versions blocked after wrong
    tokens (wrong tokens are throttled now, never blocking).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        COMPLETED = "completed"
        BLOCKED = "blocked"

    # Registrations a device can still complete.
    OPEN = (Status.PENDING, Status.ACCEPTED)

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="device_registrations")
    external_id = models.CharField(max_length=64)
    token_digest = models.CharField(max_length=64, editable=False)
    type = models.ForeignKey(DeviceType, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    group = models.ForeignKey(DeviceGroup, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failed_attempts = models.PositiveIntegerField(default=0, editable=False)
    last_failed_at = models.DateTimeField(null=True, blank=True, editable=False)
    device = models.OneToOneField(Device, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()
    secret_fields = ("token_digest",)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"],
                condition=models.Q(status__in=["pending", "accepted"]),
                name="devices_registration_unique_open",
            ),
            # Without a token, the tenant slug and the printed external id would suffice.
            models.CheckConstraint(
                condition=~models.Q(status__in=["pending", "accepted"]) | ~models.Q(token_digest=""),
                name="devices_registration_open_has_token",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} ({self.status})"


class Operation(models.Model):
    """A command for one device (restart, configuration change, …); the device polls for it."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        EXECUTING = "EXECUTING"
        SUCCESSFUL = "SUCCESSFUL"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="operations")
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="operations")
    kind = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey("tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["device", "id"], condition=models.Q(status="PENDING"), name="devices_operation_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.device_id} ({self.status})"


class PayloadPurge(models.Model):
    """A background deletion of decommissioned devices' payload data, with visible progress."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    device_ids = ArrayField(models.BigIntegerField())
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.BigIntegerField(default=0, help_text="Rows to delete, counted when the job starts.")
    deleted = models.BigIntegerField(default=0)
    created_by = models.ForeignKey("tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Purge {self.pk}: {self.progress}%"

    @property
    def progress(self) -> int:
        """Percent done (100 once finished, even when there was nothing to delete)."""
        if self.status == self.Status.DONE:
            return 100
        return min(99, int(100 * self.deleted / self.total)) if self.total else 0
