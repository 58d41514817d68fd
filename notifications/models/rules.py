"""A tenant's notification rules: which alarms and events go to which channel."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from notifications.batching import DIGEST_CHOICES
from tenants.models import Tenant
from tenants.querysets import TenantQuerySet

# Events a rule may name, each with the audit events it stands for (audit.signals.recorded).
EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "rollout.paused": ("a rollout paused (by a person or on failures)", ("firmware.rollout.pause",)),
    "support_grant.opened": ("a support engineer opened a grant's link", ("support_grant.open",)),
    "device.blocked": ("a device was blocked", ("device.block",)),
    "registration.blocked": ("a registration was blocked after wrong tokens", ("registration.throttled",)),
    "login.lockout": ("an account was locked out after failed logins", ("auth.lockout",)),
}
EVENT_OF_AUDIT = {audit_event: event for event, (_, audit_events) in EVENTS.items() for audit_event in audit_events}
SEVERITIES = ("CRITICAL", "MAJOR", "MINOR", "WARNING")


class NotificationRule(models.Model):
    """Which new alarms (severity, type, device group) and events notify whom, by e-mail or webhook.

    A webhook's signing secret is never stored: it is derived from the server's key and
    ``secret_salt`` (``notifications.signing``), shown once when made, and rotated by a new salt.
    """

    class Channel(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    severities = ArrayField(
        models.CharField(max_length=16),
        default=list,
        blank=True,
        help_text="New alarms of these severities notify; none: no alarms.",
    )
    alarm_types = ArrayField(
        models.CharField(max_length=64), default=list, blank=True, help_text="Only alarms of these types; none: any."
    )
    device_groups = ArrayField(
        models.BigIntegerField(), default=list, blank=True, help_text="Only devices of these groups; none: any device."
    )
    events = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # E-mail: users of the tenant by id, and everyone holding one of these built-in roles.
    recipient_users = ArrayField(models.BigIntegerField(), default=list, blank=True)
    recipient_roles = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    webhook_url = models.URLField(max_length=500, blank=True)
    # Quiet hours and digests (notifications.batching).
    quiet_from = models.TimeField(null=True, blank=True, help_text="Quiet hours start (local time); empty: none.")
    quiet_until = models.TimeField(null=True, blank=True, help_text="Quiet hours end; what was held is sent then.")
    quiet_timezone = models.CharField(
        max_length=64, default="UTC", blank=True, help_text="IANA time zone, e.g. Europe/Berlin; empty: UTC."
    )
    critical_breaks_quiet = models.BooleanField("critical alarms break through quiet hours", default=True)
    digest_minutes = models.PositiveIntegerField(
        "digest",
        default=0,
        blank=True,
        choices=DIGEST_CHOICES,
        help_text="Collect notifications into one message this often.",
    )
    secret_salt = models.CharField(max_length=64, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()
    secret_fields = ("secret_salt",)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "id"], name="notifications_rule_tenant_id")]

    def __str__(self) -> str:
        return self.name
