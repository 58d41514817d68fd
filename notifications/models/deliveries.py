"""One notification on its way to one rule's channel, with every attempt's outcome."""

from __future__ import annotations

from django.db import models

from notifications.models.rules import NotificationRule
from tenants.models import Tenant
from tenants.querysets import TenantQuerySet


class Delivery(models.Model):
    """A notification for ``rule``; ``key`` names what it is about, once per rule (a repeat is not sent)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE, related_name="deliveries")
    key = models.CharField(max_length=128, help_text="What the notification is about, e.g. alarm:17.")
    event = models.CharField(max_length=32)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    batch_at = models.DateTimeField(
        null=True, blank=True, help_text="Held for a digest or quiet hours: sent with the rule's others then."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "key"], name="notifications_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notifications_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event} {self.key} → {self.rule_id}: {self.status}"
