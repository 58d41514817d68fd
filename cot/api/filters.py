"""Filter bases for the API: relation filters choose from the caller's rows only; every value is strict.

django-filter validates a relation filter's value against the related model's whole
table, so ``?group=<id>`` answered 400 for an id that exists nowhere and 200 (empty)
for another tenant's: an oracle for which ids exist. Choices come from the caller's
restricted queryset instead, so a foreign id and a missing one get the same 400.

Values are strict, in one place for every filter: a parameter given empty is a 400 (not
"no filter"), booleans are ``true`` or ``false``, date-times are ISO 8601 with a time
zone and are compared in UTC (an offset PostgreSQL cannot read never reaches it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend

from tenants.access import restrict_queryset
from tenants.models import Action

RELATION_FILTERS = (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)


BOOLEANS = {"true": True, "false": False}


class StrictBooleanField(forms.Field):
    """``true`` or ``false`` (any case); anything else is an error, not "no filter"."""

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        choice = BOOLEANS.get(str(value).strip().lower())
        if choice is None:
            raise forms.ValidationError("Use true or false.")
        return choice


class StrictDateTimeField(forms.Field):
    """An ISO 8601 date-time with a time zone, returned in UTC."""

    def to_python(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            # %% because django-filter formats messages with %; it shows as %2B.
            hint = " A '+' in a query string must be written %%2B." if " " in text else ""
            raise forms.ValidationError(f"An ISO 8601 date-time such as 2026-11-30T08:00:00Z.{hint}") from None
        if moment.tzinfo is None:
            raise forms.ValidationError("Give the time zone too, for example 2026-11-30T08:00:00Z.")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("The date-time is out of range.") from None


class IdField(forms.IntegerField):
    """A row id: a whole number a PostgreSQL bigint can hold, not negative."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_value=2**63 - 1, **kwargs)


class IdFilter(django_filters.Filter):
    """An id kept without a foreign key (payload rows name their device by id): a whole number."""

    field_class = IdField


class StrictBooleanFilter(django_filters.Filter):
    """A boolean filter that says so when the value is not ``true`` or ``false``."""

    field_class = StrictBooleanField


class StrictDateTimeFilter(django_filters.Filter):
    """A date-time filter: ISO 8601 with a time zone, compared in UTC."""

    field_class = StrictDateTimeField


class ScopedFilterSet(django_filters.FilterSet):
    """Base of every API filter set; see the module docstring."""

    FILTER_DEFAULTS = {
        **django_filters.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": StrictBooleanFilter},
        models.DateTimeField: {"filter_class": StrictDateTimeFilter},
    }

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        # self.filters is this instance's own deep copy, so nothing leaks between requests.
        for name, spec in self.filters.items():
            if isinstance(spec, RELATION_FILTERS):
                model = self.relation_model(name)
                spec.queryset = restrict_queryset(model._default_manager.all(), user, Action.VIEW)

    def is_valid(self) -> bool:
        valid = super().is_valid()
        given_empty = [name for name in self.filters if name in self.data and self.data.get(name) == ""]
        for name in given_empty:
            self.form.add_error(name, "Empty: give a value, or leave the parameter out.")
        return valid and not given_empty

    @classmethod
    def relation_model(cls, name: str) -> Any:
        """The model a relation filter ``name`` chooses from."""
        spec = cls.base_filters[name]
        queryset = spec.extra.get("queryset")
        if queryset is not None and not callable(queryset):
            return queryset.model
        return cls._meta.model._meta.get_field(spec.field_name).related_model


class ScopedFilterBackend(DjangoFilterBackend):
    """``DjangoFilterBackend`` whose filter sets are ``ScopedFilterSet``s, declared or generated."""

    filterset_base = ScopedFilterSet

    def get_filterset_class(self, view: Any, queryset: Any = None) -> Any:
        filterset_class = super().get_filterset_class(view, queryset)
        if filterset_class is not None and not issubclass(filterset_class, ScopedFilterSet):
            raise ImproperlyConfigured(f"{type(view).__name__}.filterset_class must derive from ScopedFilterSet.")
        return filterset_class
