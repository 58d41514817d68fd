"""API representations of device groups and the rights granted on them."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cot.api.serializers import ScopedRelatedField, StrictModelSerializer, StrictSerializer, VisibleRelatedField
from devices import services
from devices.models import Alarm, Device, DeviceGroup, DeviceRegistration, DeviceType, Event, Measurement, Operation
from devices.selectors import is_online
from devices.services import registration, registry
from tenants.models import DEVICE_GROUP_RIGHTS, Role, User


class DeviceGroupSerializer(StrictModelSerializer):
    """A device group; ``parent`` places it in the tree (rights are not inherited)."""

    # DRF moves declared fields off the class; only the stubs see a clash with Serializer.parent.
    parent = VisibleRelatedField(DeviceGroup, required=False, allow_null=True)  # type: ignore[assignment]

    class Meta:
        model = DeviceGroup
        fields = ["id", "name", "description", "parent"]

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


class DeviceTypeSerializer(StrictModelSerializer):
    """A device type."""

    class Meta:
        model = DeviceType
        fields = ["id", "manufacturer", "model", "certified", "certification_notes", "heartbeat_interval"]

    def create(self, validated_data: dict[str, Any]) -> DeviceType:
        return registry.do_create_device_type(actor=self.actor, **validated_data)


class DeviceSerializer(StrictModelSerializer):
    """A device with its state; ``online`` derives from last seen and its type's interval."""

    type = ScopedRelatedField(DeviceType, required=False, allow_null=True)
    group = ScopedRelatedField(DeviceGroup, required=False, allow_null=True)
    attributes = serializers.DictField(required=False, help_text="A JSON object of at most 4 KiB.")
    online = serializers.SerializerMethodField()
    location = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id",
            "external_id",
            "name",
            "type",
            "group",
            "status",
            "firmware_version",
            "last_seen_at",
            "online",
            "location",
            "attributes",
            "certificate_fingerprint",
            "credential_prefix",
            "registered_at",
        ]
        read_only_fields = [
            "external_id",
            "status",
            "firmware_version",
            "last_seen_at",
            "credential_prefix",
            "registered_at",
        ]

    def get_online(self, device: Device) -> bool:
        return is_online(device)

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_location(self, device: Device) -> dict[str, Any] | None:
        if device.latitude is None:
            return None
        return {
            "latitude": device.latitude,
            "longitude": device.longitude,
            "altitude": device.altitude,
            "time": device.located_at,
        }

    def update(self, instance: Device, validated_data: dict[str, Any]) -> Device:
        return registry.do_update_device(instance, validated_data, actor=self.actor)


class DeviceRegistrationSerializer(StrictModelSerializer):
    """An expected device with its registration token: the one sent, or a generated one.

    The token is stored hashed and appears once, in the response that creates the
    registration; later reads never show it.
    """

    registration_token = serializers.CharField(
        required=False,
        allow_blank=False,
        min_length=registration.MIN_TOKEN_LENGTH,
        max_length=registration.MAX_TOKEN_LENGTH,
        help_text="The secret the device presents when it registers. Leave it out to have one generated; "
        "the response that creates the registration shows it, nothing later does.",
    )
    type = ScopedRelatedField(DeviceType, required=False, allow_null=True)
    group = ScopedRelatedField(DeviceGroup, required=False, allow_null=True)

    class Meta:
        model = DeviceRegistration
        fields = [
            "id",
            "external_id",
            "registration_token",
            "type",
            "group",
            "status",
            "failed_attempts",
            "last_failed_at",
            "device",
            "created_at",
            "accepted_at",
        ]
        read_only_fields = ["status", "failed_attempts", "last_failed_at", "device", "created_at", "accepted_at"]

    def create(self, validated_data: dict[str, Any]) -> DeviceRegistration:
        issued = registration.do_create_registration(actor=self.actor, **validated_data)
        return with_token(issued)

    def to_representation(self, instance: DeviceRegistration) -> dict[str, Any]:
        data = super().to_representation(instance)
        token = getattr(instance, "issued_token", None)
        if token is None:
            data.pop("registration_token", None)  # shown once, in the response that creates it
        else:
            data["registration_token"] = token
        return data


def with_token(issued: registration.IssuedRegistration) -> DeviceRegistration:
    """The new registration, carrying its token for the one response that shows it."""
    issued.registration.issued_token = issued.token  # type: ignore[attr-defined]
    return issued.registration


class RegistrationCsvSerializer(StrictSerializer):
    """A CSV file of expected devices, as text."""

    csv = serializers.CharField(
        max_length=2_000_000,
        style={"base_template": "textarea.html"},  # multi-line: line breaks are allowed
        help_text="external_id[,registration_token,type,group] per line",
    )


class BulkDevicesSerializer(StrictSerializer):
    """Device ids for a bulk action, with the target group when moving."""

    devices = serializers.ListField(child=serializers.IntegerField(), min_length=1, max_length=10_000)
    group = ScopedRelatedField(DeviceGroup, required=False, allow_null=True)
    purge = serializers.BooleanField(required=False, default=False)


class OperationSerializer(StrictModelSerializer):
    """A command for a device."""

    device = ScopedRelatedField(Device)

    class Meta:
        model = Operation
        fields = ["id", "device", "kind", "parameters", "status", "failure_reason", "created_at", "updated_at"]
        read_only_fields = ["status", "failure_reason", "created_at", "updated_at"]

    def create(self, validated_data: dict[str, Any]) -> Operation:
        return registry.do_create_operation(
            validated_data["device"],
            kind=validated_data["kind"],
            parameters=validated_data.get("parameters", {}),
            actor=self.actor,
        )


class MeasurementSerializer(serializers.ModelSerializer[Any]):
    """A stored measurement."""

    device = serializers.IntegerField(source="device_id")

    class Meta:
        model = Measurement
        fields = ["id", "device", "time", "type", "series", "value", "unit"]


class EventSerializer(serializers.ModelSerializer[Any]):
    """A stored event."""

    device = serializers.IntegerField(source="device_id")

    class Meta:
        model = Event
        fields = ["id", "device", "time", "type", "text", "attributes"]


class AlarmSerializer(serializers.ModelSerializer[Any]):
    """An alarm."""

    device = serializers.IntegerField(source="device_id")

    class Meta:
        model = Alarm
        fields = ["id", "device", "type", "severity", "status", "text", "count", "first_time", "last_time"]


class AlarmStatusSerializer(StrictSerializer):
    """The new status of an alarm."""

    status = serializers.ChoiceField(choices=list(registry.ALARM_TRANSITIONS))
