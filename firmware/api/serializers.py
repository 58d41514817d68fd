"""API representations of firmware images, signing keys and the firmware policy."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cot.api.serializers import ScopedRelatedField, StrictModelSerializer, StrictSerializer
from cot.text import text_problem
from devices.models import DeviceType
from firmware import counters, services
from firmware.models import FirmwareImage, FirmwarePolicy, Rollout, RolloutWave, SigningKey
from firmware.models.images import SEMVER
from firmware.models.rollouts import TIMING_FIELDS
from firmware.services.rollouts import MAX_WAVES


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
        fields = ["require_signatures", "max_image_bytes", "standard_users_roll_out"]


# --- rollouts ---------------------------------------------------------------------------------

MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1
#: at most this many ids or versions in one target list
MAX_TARGETS = 1000
#: at most this many values of one parameter in a preview's query (a longer request line is a 414 anyway)
MAX_QUERY_TARGETS = 100


class StrictIntegerField(serializers.IntegerField):
    """A whole number as a JSON number (inside a list too, where the strict mixin does not look)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictDecimalField(serializers.DecimalField):
    """A decimal as a JSON number, in and out (DRF would also take text such as "1e1")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(coerce_to_string=False, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError("Must be a number (a JSON number).")
        return super().to_internal_value(data)


class VersionTextField(serializers.CharField):
    """A version string as JSON text, under the text rules."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be text (a JSON string).")
        value = str(super().to_internal_value(data))
        problem = text_problem(value, multi_line=False)
        if problem is not None:
            raise serializers.ValidationError(problem)
        return value


def _id_list(help_text: str, max_length: int = MAX_TARGETS) -> serializers.ListField:
    return serializers.ListField(
        child=StrictIntegerField(min_value=1, max_value=MAX_BIGINT),
        required=False,
        default=list,
        max_length=max_length,
        help_text=help_text,
    )


class RolloutWaveSpecSerializer(StrictSerializer):
    """One wave of a new rollout: a ``percent`` or a ``count`` (the last wave may name neither: it takes the rest)."""

    percent = StrictDecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(100),
        required=False,
        allow_null=True,
        help_text="Share of the matching devices, rounded up; the percentages add up to at most 100.",
    )
    count = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)
    success_threshold = serializers.IntegerField(min_value=0, max_value=100, required=False)
    error_threshold = serializers.IntegerField(min_value=0, max_value=100, required=False)
    min_finished = serializers.IntegerField(min_value=0, max_value=MAX_INT, required=False)
    soak_seconds = serializers.IntegerField(min_value=0, max_value=30 * 24 * 3600, required=False)
    auto_advance = serializers.BooleanField(required=False)


class RolloutCreateSerializer(StrictSerializer):
    """A new draft rollout of a released image: its waves, its targets and the engine's settings.

    Every non-empty target list narrows the selection (AND); all empty means every device
    of the image's types. Ids of another tenant's rows simply match nothing.
    """

    name = serializers.CharField(max_length=200)
    image = ScopedRelatedField(FirmwareImage, help_text="A released image of your tenant.")
    waves = RolloutWaveSpecSerializer(
        many=True,
        max_length=MAX_WAVES,  # type: ignore[call-arg]  # ListSerializer takes it; the stubs do not know
        help_text="In order; the first wave is the canaries, the last takes the rest.",
    )
    target_groups = _id_list("Device group ids (a device in one of them).")
    target_types = _id_list("Device type ids.")
    target_devices = _id_list("Device ids.")
    target_versions = serializers.ListField(
        child=VersionTextField(max_length=64),
        required=False,
        default=list,
        max_length=MAX_TARGETS,
        help_text="Firmware versions the devices run now.",
    )
    device_timeout_seconds = serializers.IntegerField(min_value=60, max_value=7 * 24 * 3600, required=False)
    max_retries = serializers.IntegerField(min_value=0, max_value=20, required=False)
    start_at = serializers.DateTimeField(required=False, allow_null=True)
    window_cron = serializers.CharField(
        max_length=100, required=False, allow_blank=True, help_text="Five cron fields, such as 0 2 * * 1-5."
    )
    window_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, required=False, allow_null=True)
    window_timezone = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="An IANA time zone, such as Europe/Berlin."
    )
    pace_per_minute = serializers.IntegerField(min_value=1, max_value=MAX_INT, required=False, allow_null=True)


class RolloutWaveSerializer(serializers.ModelSerializer[RolloutWave]):
    """A wave as planned: its size, thresholds, state and how many devices planning gave it."""

    percent = StrictDecimalField(max_digits=5, decimal_places=2, read_only=True, allow_null=True)
    counts = serializers.SerializerMethodField()

    class Meta:
        model = RolloutWave
        fields = [
            "index",
            "percent",
            "count",
            "success_threshold",
            "error_threshold",
            "min_finished",
            "soak_seconds",
            "auto_advance",
            "status",
            "planned",
            "started_at",
            "soaking_since",
            "finished_at",
            "counts",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}, "example": {"pending": 90, "succeeded": 10}}
    )
    def get_counts(self, wave: RolloutWave) -> dict[str, int]:
        """Devices of the wave per target state (the sharded counters; states with none left out)."""
        known: Mapping[int, dict[str, int]] | None = self.context.get("wave_counts")
        if known is None:
            known = counters.counts([wave.pk])
        return dict(known.get(wave.pk, {}))


class RolloutSerializer(StrictModelSerializer):
    """A rollout with its waves; created through ``RolloutCreateSerializer``, then planned."""

    waves = RolloutWaveSerializer(many=True, read_only=True)

    class Meta:
        model = Rollout
        fields = [
            "id",
            "name",
            "image",
            "status",
            "status_reason",
            "target_groups",
            "target_types",
            "target_versions",
            "target_devices",
            *TIMING_FIELDS,
            "created_at",
            "planned_at",
            "planned_total",
            "planning_since",
            "started_at",
            "finished_at",
            "waves",
        ]
        read_only_fields = fields


class RolloutPauseSerializer(StrictSerializer):
    """Why the rollout is paused (optional; shown with the rollout and in the audit trail)."""

    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, trim_whitespace=True)


class RolloutRetrySerializer(serializers.Serializer[Any]):
    """How many failed targets went back to pending, and the rollout."""

    retried = serializers.IntegerField()
    rollout = RolloutSerializer()


class RolloutPreviewQuerySerializer(serializers.Serializer[Any]):
    """The query of a preview: an image and the target spec (repeat a parameter for several values)."""

    image = ScopedRelatedField(FirmwareImage, help_text="An image of your tenant.")
    target_groups = _id_list("Device group ids (repeat the parameter).", MAX_QUERY_TARGETS)
    target_types = _id_list("Device type ids (repeat the parameter).", MAX_QUERY_TARGETS)
    target_devices = _id_list("Device ids (repeat the parameter).", MAX_QUERY_TARGETS)
    target_versions = serializers.ListField(
        child=VersionTextField(max_length=64),
        required=False,
        default=list,
        max_length=MAX_QUERY_TARGETS,
        help_text="Firmware versions the devices run now (repeat the parameter).",
    )

    LISTS = ("target_groups", "target_types", "target_devices", "target_versions")

    @classmethod
    def from_query(cls, query: QueryDict, **kwargs: Any) -> RolloutPreviewQuerySerializer:
        """Unknown and repeated single parameters are refused; whole numbers arrive as digits."""
        problems: dict[str, list[str]] = {}
        data: dict[str, Any] = {}
        for name in query:
            values = query.getlist(name)
            if name not in cls._declared_fields:
                problems[name] = ["Unknown parameter."]
            elif name in cls.LISTS:
                data[name] = [_digits(v) for v in values] if name != "target_versions" else values
            elif len(values) > 1:
                problems[name] = ["Send this parameter once."]
            else:
                data[name] = _digits(values[0])
        if problems:
            raise serializers.ValidationError(problems)
        return cls(data=data, **kwargs)


def _digits(value: str) -> Any:
    """A query value of digits as a whole number; anything else stays text (and is refused as one)."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 19 else value


class RolloutPreviewRowSerializer(serializers.Serializer[Any]):
    """How many matching devices are in one group (or none) and of one type."""

    group = serializers.IntegerField(allow_null=True)
    type = serializers.IntegerField()
    count = serializers.IntegerField()


class RolloutPreviewSerializer(serializers.Serializer[Any]):
    """What planning now would reach: counts per group and type, and their total."""

    total = serializers.IntegerField()
    rows = RolloutPreviewRowSerializer(many=True)
