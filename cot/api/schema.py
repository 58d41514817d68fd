"""The OpenAPI schema, generated once per process.

The schema is public (device makers and script authors fetch it without an account) and
changes only with a deploy, that is with new processes; generating it walks every view
and serializer, so an anonymous caller could otherwise make each request cost that.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class CachedSchemaView(SpectacularAPIView):
    """``SpectacularAPIView`` that keeps each generated schema (per API version and language)."""

    _schemas: ClassVar[dict[tuple[Any, ...], Response]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, request.GET.get("lang"))
        with self._lock:
            cached = self._schemas.get(key)
            if cached is None:
                cached = self._schemas[key] = super()._get_schema_response(request)
        # A fresh response around the same data: responses carry per-request state.
        return Response(data=cached.data, headers=dict(cached.headers))
