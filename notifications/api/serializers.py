"""Notification rules and their deliveries over the API; a webhook's secret appears once."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from cot.api.serializers import StrictModelSerializer
from notifications import services
from notifications.models import EVENTS, SEVERITIES, Delivery, NotificationRule
from notifications.services.rules import EDITABLE


def _ids(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=1000, help_text=help_text
    )


class NotificationRuleSerializer(StrictModelSerializer):
    """A rule: what it listens to (alarm severities, types, device groups; events) and where it sends."""

    severities = serializers.ListField(child=serializers.ChoiceField(choices=SEVERITIES), required=False, max_length=4)
    alarm_types = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=100, help_text="None: any type."
    )
    device_groups = _ids("Ids of device groups whose devices' alarms notify; none: any device.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENTS)), required=False, max_length=10)
    recipient_users = _ids("E-mail channel: ids of users of the tenant to write to.")
    recipient_roles = serializers.ListField(
        child=serializers.ChoiceField(choices=["administrator", "standard", "business"]), required=False, max_length=3
    )

    digest_minutes = serializers.IntegerField(
        required=False, help_text="Collect notifications into one message every 15, 60, 240 or 1440 minutes; 0: off."
    )

    class Meta:
        model = NotificationRule
        fields = ["id", "channel", *EDITABLE, "secret_rotated_at", "created_at"]
        read_only_fields = ["secret_rotated_at", "created_at"]

    def validate_channel(self, value: str) -> str:
        if self.instance is not None and value != self.instance.channel:
            raise serializers.ValidationError("A rule keeps its channel: make a new rule for another.")
        return value

    def create(self, validated_data: dict[str, Any]) -> NotificationRule:
        rule, secret = services.do_create_notification_rule(actor=self.actor, **validated_data)
        rule.secret = secret  # type: ignore[attr-defined]
        return rule

    def update(self, instance: NotificationRule, validated_data: dict[str, Any]) -> NotificationRule:
        validated_data.pop("channel", None)
        return services.do_update_notification_rule(instance, validated_data, actor=self.actor)

    def to_representation(self, instance: NotificationRule) -> dict[str, Any]:
        data = super().to_representation(instance)
        secret = getattr(instance, "secret", None)
        if secret:
            data["secret"] = secret
        return data


class DeliverySerializer(StrictModelSerializer):
    """One notification on its way: what it is about, how each attempt went."""

    class Meta:
        model = Delivery
        fields = [
            "id",
            "rule",
            "event",
            "key",
            "status",
            "attempts",
            "response_code",
            "error",
            "next_attempt_at",
            "batch_at",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields
