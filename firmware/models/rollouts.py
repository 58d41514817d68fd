"""Staged rollouts: a released image offered to a set of devices, wave after wave.

A ``Rollout`` says what (an image), to whom (its target spec) and how (settings the
engine reads); planning (``firmware.services.rollouts``) writes one ``RolloutTarget``
per device in one set-based statement, each assigned to a ``RolloutWave``. Devices later
find their work by polling (index on device and status); a wave starts by changing one
row. The states and their moves are tables in ``firmware.states``.

The target spec is stored as plain array columns (group, type and device ids, version
strings), not as many-to-many tables: it is a filter, read once by planning as
``= ANY(...)`` inside the planning statement, and what planning decided is recorded
in the targets. Ids that are gone or belong to another tenant simply match nothing
(planning always filters by the rollout's tenant and the planner's rights), so no
referential integrity is lost, a rollout stays readable after a group is deleted, and
there are no through tables that would each need their own tenant column and rules.
"""

from __future__ import annotations

import secrets
import zoneinfo
from datetime import datetime
from decimal import Decimal

from cronsim import CronSim, CronSimError
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from devices.models import Device
from firmware.models.images import FirmwareImage
from tenants.models import Tenant
from tenants.querysets import TenantQuerySet

# Five cron fields (minute hour day-of-month month day-of-week): digits, names, * , - / only.
CRON = r"^\s*[0-9A-Za-z*,/-]+(\s+[0-9A-Za-z*,/-]+){4}\s*\Z"
PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


def new_seed() -> str:
    """A random seed for the shuffle of a rollout's devices; stored, so planning is reproducible."""
    return secrets.token_hex(8)


def validate_cron(value: str) -> None:
    """Five cron fields that name times that exist (``99 * * * *`` or 31 February never fire)."""
    if not value:
        return
    try:
        next(CronSim(value, datetime(2000, 1, 1)))
    except (CronSimError, StopIteration, ValueError) as error:
        raise ValidationError(f"{value!r} is not a cron expression that ever fires ({error}).") from None


def validate_timezone(value: str) -> None:
    """An IANA time zone name (``Europe/Berlin``)."""
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone; use a name such as Europe/Berlin.")


# How a rollout proceeds per device and over time; the API, the cockpit and the docs list them in this order.
TIMING_FIELDS = (
    "device_timeout_seconds",
    "max_retries",
    "start_at",
    "window_cron",
    "window_minutes",
    "window_timezone",
    "pace_per_minute",
)


class Rollout(models.Model):
    """One image rolled out to a tenant's devices in waves.

    Window, start time and pace are stored for the engine that follows; planning does not
    read them. ``seed`` makes the shuffle of devices over waves deterministic.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        PLANNING = "planning"
        PLAN_FAILED = "plan_failed"
        READY = "ready"
        RUNNING = "running"
        PAUSED = "paused"
        CANCELING = "canceling"
        CANCELED = "canceled"
        FINISHED = "finished"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="firmware_rollouts")
    name = models.CharField(max_length=200)
    image = models.ForeignKey(FirmwareImage, on_delete=models.PROTECT, related_name="rollouts")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    status_reason = models.CharField(max_length=500, blank=True, editable=False)
    # The target spec: every non-empty list narrows the selection (AND); all empty = the tenant's fleet.
    target_groups = ArrayField(models.BigIntegerField(), default=list, blank=True)
    target_types = ArrayField(models.BigIntegerField(), default=list, blank=True)
    target_versions = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    target_devices = ArrayField(models.BigIntegerField(), default=list, blank=True)
    device_timeout_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(60), MaxValueValidator(7 * 24 * 3600)]
    )
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(20)])
    start_at = models.DateTimeField(null=True, blank=True)
    window_cron = models.CharField(
        max_length=100,
        blank=True,
        validators=[RegexValidator(CRON, "Use five cron fields, such as 0 2 * * 1-5."), validate_cron],
    )
    window_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    window_timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    pace_per_minute = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    seed = models.CharField(max_length=32, default=new_seed, editable=False)
    created_by = models.ForeignKey("tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    planned_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The planning job (firmware.tasks.plan_rollout): whose rights select the devices, when it
    # was (last) queued and how often; the watchdog re-queues a job whose worker vanished.
    planned_by = models.ForeignKey(
        "tenants.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    planning_since = models.DateTimeField(null=True, blank=True, editable=False)
    plan_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    planned_total = models.PositiveIntegerField(default=0, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["tenant", "-created_at"]
        indexes = [models.Index(fields=["tenant", "status"], name="firmware_rollout_status")]
        constraints = [
            # A maintenance window is all three fields or none.
            models.CheckConstraint(
                condition=(
                    models.Q(window_cron="", window_minutes__isnull=True, window_timezone="")
                    | (
                        ~models.Q(window_cron="")
                        & models.Q(window_minutes__isnull=False)
                        & ~models.Q(window_timezone="")
                    )
                ),
                name="firmware_rollout_window_complete",
            ),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="firmware_rollout_tenant_row"),
        ]

    def __str__(self) -> str:
        return self.name


class RolloutWave(models.Model):
    """One stage of a rollout: its size (percent or count), its thresholds and how it advances.

    The last wave takes every device the earlier ones left. Thresholds are percentages of
    finished devices, judged once ``min_finished`` devices have finished.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        ACTIVE = "active"
        SOAKING = "soaking"
        SUCCEEDED = "succeeded"
        HALTED = "halted"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="waves")
    index = models.PositiveSmallIntegerField(help_text="0 is the first wave (the canaries).")
    percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(100)],
    )
    count = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    success_threshold = models.PositiveSmallIntegerField(default=95, validators=PERCENT)
    error_threshold = models.PositiveSmallIntegerField(default=5, validators=PERCENT)
    min_finished = models.PositiveIntegerField(default=1)
    soak_seconds = models.PositiveIntegerField(default=3600, validators=[MaxValueValidator(30 * 24 * 3600)])
    auto_advance = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    soaking_since = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    planned = models.PositiveIntegerField(default=0, editable=False)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["rollout", "index"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "index"], name="firmware_wave_unique_index"),
            models.CheckConstraint(
                condition=models.Q(percent__isnull=True) | models.Q(count__isnull=True),
                name="firmware_wave_percent_or_count",
            ),
            # The target of composite keys that keep references inside the tenant (cot/database/constraints.py).
            models.UniqueConstraint(fields=["tenant", "id"], name="firmware_wave_tenant_row"),
        ]

    def __str__(self) -> str:
        return f"Wave {self.index + 1} of {self.rollout_id}"


class RolloutTarget(models.Model):
    """One device's part in a rollout: its wave and how far it got.

    Written set-based by planning (one INSERT … SELECT); the columns are kept few, as a
    rollout may hold a million rows.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        OFFERED = "offered"
        DOWNLOADING = "downloading"
        DOWNLOADED = "downloaded"
        VERIFIED = "verified"
        INSTALLING = "installing"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        TIMED_OUT = "timed_out"
        REJECTED = "rejected"
        CANCELED = "canceled"
        SKIPPED = "skipped"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="targets")
    wave = models.ForeignKey(RolloutWave, on_delete=models.CASCADE, related_name="targets")
    # Devices are never deleted (they are decommissioned), so the foreign key costs nothing.
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True)
    progress = models.PositiveSmallIntegerField(null=True, blank=True, validators=PERCENT)
    # The version the device reported running after its restart (success needs it to be the image's).
    reported_version = models.CharField(max_length=64, blank=True)
    offered_at = models.DateTimeField(null=True, blank=True)
    # The first progress report: the per-device timeout counts from here.
    started_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["rollout", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rollout", "device"], name="firmware_target_once_per_rollout"),
        ]
        indexes = [
            models.Index(fields=["wave", "status"], name="firmware_target_wave_status"),
            # A polling device's open work.
            models.Index(fields=["device", "status"], name="firmware_target_device_status"),
        ]

    def __str__(self) -> str:
        return f"Device {self.device_id} in rollout {self.rollout_id} ({self.status})"


class RolloutCounter(models.Model):
    """Sharded progress counters: how many of a wave's targets are in each state.

    Every device report moves one target and adds -1/+1 to two of these rows, in the
    same transaction, on a shard picked at random: concurrent reports of one wave do
    not queue on a single hot row. A wave's figure is the sum over its shards (a few
    rows for a million devices). ``firmware.counters.reconcile`` recounts active waves
    from the targets and repairs any drift.
    """

    SHARDS = 16

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    wave = models.ForeignKey(RolloutWave, on_delete=models.CASCADE, related_name="counters")
    shard = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=RolloutTarget.Status.choices)
    devices = models.IntegerField(default=0)  # one shard may go negative; the sum over shards may not

    objects = TenantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wave", "shard", "status"], name="firmware_counter_unique_cell"),
        ]

    def __str__(self) -> str:
        return f"Wave {self.wave_id} shard {self.shard}: {self.devices} {self.status}"
