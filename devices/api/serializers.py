"""API representations of device groups and the rights granted on them."""

from typing import Any

from rest_framework import serializers

from cot.api.serializers import ScopedRelatedField, StrictModelSerializer, StrictSerializer
from devices import services
from devices.models import DeviceGroup
from tenants.models import DEVICE_GROUP_RIGHTS, Role, User


class DeviceGroupSerializer(StrictModelSerializer):
    """A device group."""

    class Meta:
        model = DeviceGroup
        fields = ["id", "name", "description"]

    def create(self, validated_data: dict[str, Any]) -> DeviceGroup:
        return services.do_create_device_group(actor=self.actor, **validated_data)

    def update(self, instance: DeviceGroup, validated_data: dict[str, Any]) -> DeviceGroup:
        return services.do_update_device_group(instance, validated_data, actor=self.actor)


class DeviceGroupRightsSerializer(StrictSerializer):
    """The rights one user or one role holds on a group; writing replaces them."""

    user = ScopedRelatedField(User, required=False, allow_null=True)
    role = ScopedRelatedField(Role, required=False, allow_null=True)
    rights = serializers.ListField(child=serializers.ChoiceField(choices=list(DEVICE_GROUP_RIGHTS)))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("user") is None) == (attrs.get("role") is None):
            raise serializers.ValidationError("Name exactly one of 'user' or 'role'.")
        return attrs
