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


# What each refusal means, for every operation that can answer it (cot.api.errors, the
# permission class, cot.body_limits, the throttles). All error bodies are JSON objects:
# {"detail": …} or {"field": ["message", …]}.
ERROR_REASONS = {
    "400": "Invalid input: the body names each field (or 'detail') and why; nothing was changed.",
    "401": "No credential, or an invalid, expired or revoked one.",
    "406": "The API answers JSON only: accept application/json.",
    "403": "Your role, token scope or support grant may never do this (the message says which).",
    "404": "No such object within your reach (missing and another tenant's look the same).",
    "409": "The object's state forbids the change, or it changed meanwhile; nothing was changed.",
    "413": "The request body is larger than the server accepts (the message names the limit).",
    "415": "Send JSON with 'Content-Type: application/json'.",
    "429": "A rate limit was hit; the message names it and Retry-After says when to retry.",
}
BODY_METHODS = frozenset({"post", "put", "patch"})


def document_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing: the error answers every operation can give, and strict request bodies.

    Unknown fields are refused (``cot.api.serializers``), so request components say
    ``additionalProperties: false``; clients generated from the schema then refuse them too.
    """
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = {
        "type": "object",
        "description": "'detail' says what is wrong; for invalid input, each field names its problems.",
        "additionalProperties": True,
    }
    for name, schema in components.items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema["additionalProperties"] = False
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.get("type") == "string" and "enum" not in schema:
                    schema.setdefault("minLength", 1)  # a filter given empty is a 400 (cot.api.filters)
            # 400 where the request carries input: parameters, a path id or a body.
            has_input = bool(operation.get("parameters")) or "requestBody" in operation or "{" in path
            codes = ["400", "401", "403", "406", "429"] if has_input else ["401", "403", "406", "429"]
            if "{" in path:
                codes.append("404")
            if method in BODY_METHODS or method == "delete":
                codes.append("409")
            if method in BODY_METHODS:
                codes += ["413", "415"]
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_REASONS[code],
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
