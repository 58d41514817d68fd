"""Filter bases for the API: relation filters choose from the caller's rows only.

django-filter validates a relation filter's value against the related model's whole
table, so ``?group=<id>`` answered 400 for an id that exists nowhere and 200 (empty)
for another tenant's: an oracle for which ids exist. Choices come from the caller's
restricted queryset instead, so a foreign id and a missing one get the same 400.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ImproperlyConfigured
from django_filters.rest_framework import DjangoFilterBackend

from tenants.access import restrict_queryset
from tenants.models import Action

RELATION_FILTERS = (django_filters.ModelChoiceFilter, django_filters.ModelMultipleChoiceFilter)


class ScopedFilterSet(django_filters.FilterSet):
    """Base of every API filter set; see the module docstring."""

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        # self.filters is this instance's own deep copy, so nothing leaks between requests.
        for name, spec in self.filters.items():
            if isinstance(spec, RELATION_FILTERS):
                model = self.relation_model(name)
                spec.queryset = restrict_queryset(model._default_manager.all(), user, Action.VIEW)

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
