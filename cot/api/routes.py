"""``/api/v1/``'s one router, which every app fills with its own endpoints.

Each app registers its viewsets from ``AppConfig.ready()`` (``<app>/api/routes.py``), so
the framework never imports an app above it and a new app adds its endpoints in its own
folder. ``cot.api.urls`` serves what is registered once the URLconf is first loaded,
after every app is ready. ``ready()`` may run more than once (tests build app registries
of their own), so registering the same thing again is harmless; a clash is not.
"""

from django.urls import URLPattern
from rest_framework.routers import DefaultRouter
from rest_framework.viewsets import ViewSetMixin

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False

#: Plain views under ``/api/v1/`` that are not viewsets (``me/``), in registration order.
paths: list[URLPattern] = []


def register(prefix: str, viewset: type[ViewSetMixin], basename: str) -> None:
    """Serve ``viewset`` under ``/api/v1/<prefix>/``; URL names start with ``basename``."""
    if (prefix, viewset, basename) not in router.registry:
        router.register(prefix, viewset, basename=basename)  # refuses a basename taken by another


def register_path(pattern: URLPattern) -> None:
    """Serve ``pattern`` under ``/api/v1/`` beside the router's endpoints."""
    if not any(str(p.pattern) == str(pattern.pattern) and p.name == pattern.name for p in paths):
        paths.append(pattern)
