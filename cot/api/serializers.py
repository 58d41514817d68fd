"""Serializer bases: reject what a client should not send, restrict every relation."""

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tenants.models import Action


class StrictSerializerMixin:
    """Unknown and read-only fields in a payload are an error, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            fields = self.fields  # type: ignore[attr-defined]
            writable = {name for name, field in fields.items() if not field.read_only}
            rejected = sorted(set(data) - writable)
            if rejected:
                raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in rejected})
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictModelSerializer(StrictSerializerMixin, serializers.ModelSerializer[Any]):
    """Model serializer whose writes go through services (override ``create``/``update``)."""

    @property
    def actor(self) -> Any:
        return self.context["request"].user


class StrictSerializer(StrictSerializerMixin, serializers.Serializer[Any]):
    """Plain serializer with the same strictness."""


@extend_schema_field(OpenApiTypes.INT)
class ScopedRelatedField(serializers.PrimaryKeyRelatedField[Any]):
    """A foreign key a caller may only point at rows they can see: others are 'does not exist'."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        self.related_model = model
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.related_model.objects.restrict(self.context["request"].user, Action.VIEW)
