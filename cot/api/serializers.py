"""Serializer bases: reject what a client should not send, restrict every relation.

Strict JSON types: DRF would turn ``{"name": -45378}`` into the name ``"-45378"`` and
``{"is_active": "yes"}`` into ``True``. A value of the wrong JSON type is an error naming
the type expected, so a client's mistake shows at once instead of being stored. Text
holds no control or direction characters (``cot.text``).
"""

from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cot.text import text_problem
from tenants.models import Action


def _multi_line(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    return field.style.get("base_template") == "textarea.html"


def type_error(field: serializers.Field[Any, Any, Any, Any], value: Any) -> str | None:
    """Why ``value`` (parsed JSON) does not fit ``field``'s JSON type, or ``None`` when it does."""
    if value is None:
        return None  # the field's own allow_null decides
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false (a JSON boolean)."
    if isinstance(field, serializers.IntegerField | serializers.PrimaryKeyRelatedField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "Must be a whole number."
    if isinstance(field, serializers.ListField | serializers.MultipleChoiceField):
        return None if isinstance(value, list) else "Must be a list."
    if isinstance(field, serializers.CharField | serializers.ChoiceField):
        if not isinstance(value, str):
            return "Must be text (a JSON string)."
        return text_problem(value, multi_line=_multi_line(field))
    return None


class StrictSerializerMixin:
    """Unknown and read-only fields in a payload are an error, not silently dropped; types are strict."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            fields = self.fields  # type: ignore[attr-defined]
            writable = {name for name, field in fields.items() if not field.read_only}
            rejected = sorted(set(data) - writable)
            if rejected:
                raise serializers.ValidationError({name: ["Unknown or read-only field."] for name in rejected})
            wrong = {name: [error] for name in data if (error := type_error(fields[name], data[name])) is not None}
            if wrong:
                raise serializers.ValidationError(wrong)
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


class VisibleRelatedField(ScopedRelatedField):
    """A ``ScopedRelatedField`` that also *shows* only rows the caller can see: others read as null.

    For references that may lead out of the caller's reach (a device group's parent, whose
    rights are not inherited): the id of a row one may not see is not to be learnt from
    another. The visible ids are read once per request and model (a few hundred groups).
    """

    def to_representation(self, value: Any) -> Any:
        request = self.context["request"]
        memo = request.__dict__.setdefault("_cot_visible_ids", {})
        label = self.related_model._meta.label
        if label not in memo:
            memo[label] = frozenset(self.get_queryset().values_list("pk", flat=True))
        return value.pk if value.pk in memo[label] else None
