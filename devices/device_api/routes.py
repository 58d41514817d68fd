"""Endpoints that higher apps add under ``/api/device/v1/``, and their part of the device OpenAPI document.

The device door belongs to ``devices`` (authentication, rate limits, body parsing, the
short middleware path), but apps above it serve devices too: ``firmware`` adds
``firmware/next``, ``firmware/status`` and the image download. ``devices`` may not import
them (lint-imports), so they register here from their ``AppConfig.ready()``, as they
register their ``/api/v1/`` viewsets with ``cot.api.routes``. ``devices.device_api.urls``
serves what is registered once the device URLconf is first loaded (after every app is
ready), and ``devices.device_api.openapi`` adds the registered path documents.

``ready()`` may run more than once (tests build app registries of their own), so
registering the same pattern again is harmless; another view under a taken route is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.urls import URLPattern

#: Registered patterns, relative to ``/api/device/v1/`` (``firmware/next``), in registration order.
patterns: list[URLPattern] = []
#: Builders of OpenAPI ``paths`` entries (``{"/firmware/next": {...}}``), called when the document is built.
documents: list[Callable[[], dict[str, Any]]] = []


def register(pattern: URLPattern, document: Callable[[], dict[str, Any]] | None = None) -> None:
    """Serve ``pattern`` under ``/api/device/v1/``; ``document`` describes it (and its siblings) in OpenAPI."""
    for existing in patterns:
        if str(existing.pattern) == str(pattern.pattern):
            if existing.name != pattern.name:
                raise ValueError(f"The device route {pattern.pattern} is taken by {existing.name}.")
            break
    else:
        patterns.append(pattern)
    if document is not None and document not in documents:
        documents.append(document)


def openapi_paths() -> dict[str, Any]:
    """The ``paths`` entries every registered app documents, merged."""
    merged: dict[str, Any] = {}
    for build in documents:
        merged.update(build())
    return merged
