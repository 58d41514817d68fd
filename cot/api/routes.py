"""``/api/v1/``'s one router, which every app fills with its own endpoints.

Each app registers its viewsets from ``AppConfig.ready()`` (``<app>/api/routes.py``), so
the framework never imports an app above it and a new app adds its endpoints in its own
folder. ``cot.api.urls`` serves what is registered once the URLconf is first loaded,
after every app is ready.
"""

from django.urls import URLPattern
from rest_framework.routers import DefaultRouter

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False

#: Plain views under ``/api/v1/`` that are not viewsets (``me/``), in registration order.
paths: list[URLPattern] = []


def register_path(pattern: URLPattern) -> None:
    """Serve ``pattern`` under ``/api/v1/`` beside the router's endpoints."""
    paths.append(pattern)
