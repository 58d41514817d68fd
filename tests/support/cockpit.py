"""Clients and URLs for cockpit tests."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.test import Client
from django.urls import reverse

from tests.factories import verified_client

# The same client the API tests use for session callers.
cockpit_client = verified_client


def admin_url(model: type[models.Model] | models.Model, view: str, *args: Any) -> str:
    """The cockpit URL of ``view`` (``changelist``, ``add``, ``change``, ``delete``, ``history``, …)."""
    opts = model._meta
    return reverse(f"cockpit:{opts.app_label}_{opts.model_name}_{view}", args=args)


def object_url(obj: models.Model, view: str = "change") -> str:
    """The cockpit URL of one object's ``change``, ``delete`` or ``history`` page."""
    return admin_url(obj, view, obj.pk)


def changelist_pks(response: Any) -> set[Any]:
    """Primary keys of every row a changelist response selected (all pages)."""
    return {row.pk for row in response.context["cl"].queryset}


def filter_choices(response: Any, field_path: str) -> set[str]:
    """The values a changelist's list filter on ``field_path`` offers."""
    for spec in response.context["cl"].filter_specs:
        if getattr(spec, "field_path", None) == field_path:
            return {str(value) for value, _label in spec.lookup_choices}
    raise AssertionError(f"No list filter on {field_path!r}.")


def autocomplete_ids(client: Client, source: str, term: str = "") -> set[str]:
    """Ids the cockpit's autocomplete offers for ``source`` (``app_label.model_name.field_name``)."""
    app_label, model_name, field_name = source.split(".")
    response = client.get(
        reverse("cockpit:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term},
    )
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def row_state(obj: models.Model) -> dict[str, Any]:
    """The stored values of ``obj``'s row, to prove a request changed nothing."""
    return type(obj)._default_manager.filter(pk=obj.pk).values().get()
