"""Device payload data, in the ``telemetry`` database, apart from customer and user data.

Rows reference tenants and devices by id only: no foreign keys cross the two stores,
so nothing here can be joined to users or the registry.
"""

from typing import ClassVar

from django.db import models
from django.utils import timezone

from tenants.querysets import TenantQuerySet


class TelemetryModel(models.Model):
    """Base of payload models: routed to ``telemetry`` by ``cot.db_routers.TELEMETRY_MODELS``."""

    tenant_lookup: ClassVar[str] = "tenant_id"

    tenant_id = models.BigIntegerField()
    device_id = models.BigIntegerField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class Measurement(TelemetryModel):
    """One value of one series at one time (``c8y_Temperature``/``T`` = 21.5 °C)."""

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField()
    type = models.CharField(max_length=64)
    series = models.CharField(max_length=64)
    value = models.FloatField()
    unit = models.CharField(max_length=16, blank=True)

    class Meta:
        indexes = [
            # Charts and series lists: one device's one series over a time range.
            models.Index(fields=["device_id", "type", "series", "time"], name="telemetry_meas_series"),
            # One device's measurements newest first: a page reads its 100 rows, not the device's history.
            models.Index(fields=["device_id", "time"], name="telemetry_meas_device_time"),
            # A tenant's measurements newest first, and retention by age.
            models.Index(fields=["tenant_id", "time"], name="telemetry_meas_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type}.{self.series}={self.value}{self.unit}"


class Event(TelemetryModel):
    """Something that happened on a device."""

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField()
    type = models.CharField(max_length=64)
    text = models.CharField(max_length=1000, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["device_id", "time"], name="telemetry_event_device_time"),
            models.Index(fields=["tenant_id", "time"], name="telemetry_event_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.type}: {self.text}"


class Alarm(TelemetryModel):
    """A condition needing attention; a repeat of an open alarm of the same type counts up."""

    class Severity(models.TextChoices):
        CRITICAL = "CRITICAL"
        MAJOR = "MAJOR"
        MINOR = "MINOR"
        WARNING = "WARNING"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        ACKNOWLEDGED = "ACKNOWLEDGED"
        CLEARED = "CLEARED"

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    text = models.CharField(max_length=1000, blank=True)
    count = models.PositiveIntegerField(default=1)
    first_time = models.DateTimeField()
    last_time = models.DateTimeField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["device_id", "type"], condition=~models.Q(status="CLEARED"), name="telemetry_alarm_open_type"
            ),
        ]
        indexes = [models.Index(fields=["tenant_id", "status", "last_time"], name="telemetry_alarm_tenant_status")]

    def __str__(self) -> str:
        return f"{self.severity} {self.type} x{self.count}"


class OperationResult(TelemetryModel):
    """A status report of a device about one of its operations."""

    id = models.BigAutoField(primary_key=True)
    operation_id = models.BigIntegerField()
    time = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16)
    message = models.CharField(max_length=1000, blank=True)

    class Meta:
        indexes = [models.Index(fields=["operation_id", "time"], name="telemetry_opresult_operation")]

    def __str__(self) -> str:
        return f"{self.operation_id}: {self.status}"
