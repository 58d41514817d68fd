"""API representations of firmware images, signing keys and the firmware policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

from cot.api.serializers import ScopedRelatedField, StrictModelSerializer, StrictSerializer
from cot.text import text_problem
from devices.models import DeviceType
from firmware import services
from firmware.models import FirmwareImage, FirmwarePolicy, SigningKey
from firmware.models.images import SEMVER


class FirmwareImageSerializer(StrictModelSerializer):
    """A firmware image; a draft's release notes, expiry and security version may change."""

    device_types = serializers.PrimaryKeyRelatedField[DeviceType](many=True, read_only=True)
    key_id = serializers.SerializerMethodField(help_text="Id of the key whose signature released it, if any.")

    class Meta:
        model = FirmwareImage
        fields = [
            "id",
            "version",
            "security_version",
            "device_types",
            "size",
            "sha256",
            "release_notes",
            "expires_at",
            "status",
            "key_id",
            "created_at",
            "released_at",
        ]
        read_only_fields = ["version", "size", "sha256", "status", "created_at", "released_at"]

    def get_key_id(self, image: FirmwareImage) -> str | None:
        return image.signed_by.key_id if image.signed_by is not None else None

    def update(self, instance: FirmwareImage, validated_data: dict[str, Any]) -> FirmwareImage:
        return services.do_update_firmware_image(instance, validated_data, actor=self.actor)


class FirmwareUploadSerializer(serializers.Serializer[Any]):
    """A new image, as ``multipart/form-data``: the file and what it is.

    Form fields arrive as text, so this is not a JSON-strict serializer; unknown fields
    are refused all the same.
    """

    file = serializers.FileField(help_text="The image. Its SHA-256 and size are computed while it streams in.")
    version = serializers.RegexField(SEMVER, max_length=64, help_text="Semantic version, unique per device type.")
    security_version = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, default=0, help_text="Anti-rollback counter."
    )
    device_types = ScopedRelatedField(
        DeviceType, many=True, help_text="Device types the image fits (repeat the field)."
    )
    release_notes = serializers.CharField(
        required=False, allow_blank=True, default="", style={"base_template": "textarea.html"}
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}\Z",
        required=False,
        help_text="The SHA-256 you expect (hex, either case): a mismatch stores nothing.",
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            rejected = sorted(set(data) - set(self.fields))
            if rejected:
                raise serializers.ValidationError({name: ["Unknown field."] for name in rejected})
            if isinstance(data, QueryDict):
                # A form may repeat a field; only device_types means a list. Refused, not "last one wins".
                repeated = sorted(k for k in data if k != "device_types" and len(data.getlist(k)) > 1)
                if repeated:
                    raise serializers.ValidationError({name: ["Send this field once."] for name in repeated})
        return super().to_internal_value(data)

    def validate_release_notes(self, value: str) -> str:
        problem = text_problem(value, multi_line=True)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return value

    def validate_sha256(self, value: str) -> str:
        return value.lower()


class FirmwareReleaseSerializer(StrictSerializer):
    """What releases a draft: a signature of its manifest and the signing key's id (if the policy asks)."""

    signature = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    key_id = serializers.CharField(required=False, allow_blank=True, default="", max_length=16)


class SigningKeySerializer(StrictModelSerializer):
    """An Ed25519 public key (PEM, or base64 of the raw 32 bytes); shown as base64 of the raw key."""

    public_key = serializers.CharField(max_length=2000, style={"base_template": "textarea.html"})

    class Meta:
        model = SigningKey
        fields = ["id", "name", "public_key", "key_id", "created_at", "revoked_at"]
        read_only_fields = ["key_id", "created_at", "revoked_at"]

    def create(self, validated_data: dict[str, Any]) -> SigningKey:
        return services.do_add_signing_key(actor=self.actor, **validated_data)


class FirmwarePolicySerializer(StrictModelSerializer):
    """The tenant's firmware policy; administrators change it."""

    class Meta:
        model = FirmwarePolicy
        fields = ["require_signatures", "max_image_bytes"]
