"""The OpenAPI schema, generated once per process.

The schema is public (device makers and script authors fetch it without an account) and
changes only with a deploy, that is with new processes; generating it walks every view
and serializer, so an anonymous caller could otherwise make each request cost that.
Nothing the caller sends selects another schema: the API has one version and the
schema one language, so ``?version=`` and ``?lang=`` are ignored rather than each
generating (and keeping) a schema of its own.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class CachedSchemaView(SpectacularAPIView):
    """``SpectacularAPIView`` that generates the schema on first request and keeps it."""

    _schema: ClassVar[Response | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @extend_schema(exclude=True)  # the schema does not describe itself (as SpectacularAPIView's own get)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        with self._lock:
            if CachedSchemaView._schema is None:
                CachedSchemaView._schema = self._get_schema_response(request)
        cached = CachedSchemaView._schema
        # A fresh response around the same data: responses carry per-request state.
        return Response(data=cached.data, headers=dict(cached.headers))

    def _get_version_parameter(self, request: Request) -> None:
        return None
