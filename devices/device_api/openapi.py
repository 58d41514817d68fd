"""The device API's own OpenAPI document (``GET /api/device/v1/schema``), for device makers.

The device API is plain Django views (it is the hot path), so drf-spectacular cannot
describe it. The document is written here, next to the views, from the same constants
the validation uses (names, units, bounds, batch size), and a test checks that it names
exactly the endpoints the device URLconf serves. It is built once per process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from devices.device_api import routes, validation
from devices.device_api.views import MESSAGE_LENGTH, OPERATION_TRANSITIONS

JSON = "application/json"
NAME = {"type": "string", "pattern": f"^{validation.NAME.pattern}$", "description": "Letters, digits or . _ : -"}
TIME = {
    "type": "string",
    "format": "date-time",
    "nullable": True,
    "description": "ISO 8601 with a time zone, from 1970 to a few minutes ahead of the server's clock; "
    "the server's time when left out.",
}
TEXT = {"type": "string", "maxLength": 1000}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _one_or_many(item: str) -> dict[str, Any]:
    return {
        "oneOf": [
            _ref(item),
            {"type": "array", "items": _ref(item), "minItems": 1, "maxItems": settings.DEVICE_MAX_BATCH},
        ]
    }


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Invalid body; nothing was stored. The message names each bad item and field.",
        401: "No, an invalid, revoked or rotated-away credential.",
        403: "The device is blocked or decommissioned, or its organisation is suspended.",
        404: "Unknown id or missing/wrong registration token (one answer for all).",
        405: "Wrong method.",
        409: "The operation's state does not allow that report.",
        413: "The body or batch is too large.",
        415: "Send JSON with 'Content-Type: application/json'.",
        416: "The range cannot be satisfied (Content-Range names the size).",
        429: "A rate limit was hit; see Retry-After.",
    }
    return {str(code): {"description": reasons[code], "content": {JSON: {"schema": _ref("Error")}}} for code in codes}


def _operation(
    summary: str,
    *,
    body: dict[str, Any] | None,
    ok: tuple[int, dict[str, Any]],
    errors: tuple[int, ...],
    body_required: bool = True,
) -> dict[str, Any]:
    status, schema = ok
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {str(status): {"description": "OK", "content": {JSON: {"schema": schema}}}, **_errors(*errors)},
    }
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
    return operation


DEVICE_ERRORS = (400, 401, 403, 405, 413, 415, 429)


def _pending() -> dict[str, Any]:
    return {
        "description": "Expected, but not accepted yet: ask again later.",
        "content": {
            JSON: {
                "schema": _object(
                    {"status": {"type": "string", "enum": ["pending"]}, "detail": {"type": "string"}},
                    ["status", "detail"],
                )
            }
        },
    }


def schema_view(request: HttpRequest) -> JsonResponse:
    """``GET /api/device/v1/schema``: this document (public, like the user API's)."""
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"detail": "Use GET."}, status=405)
        response["Allow"] = "GET"
        return response
    return JsonResponse(document())


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The OpenAPI 3 document of ``/api/device/v1/``."""
    stored = _object({"stored": {"type": "integer"}}, ["stored"])
    schemas = {
        "Error": {
            "type": "object",
            "description": "'detail' says what is wrong; for batches, 'items' lists each bad item's fields.",
            "properties": {"detail": {}, "items": {"type": "object"}},
        },
        "Measurement": _object(
            {
                "time": TIME,
                "type": NAME,
                "series": NAME,
                "value": {"type": "number", "minimum": -validation.VALUE_BOUND, "maximum": validation.VALUE_BOUND},
                "unit": {
                    "type": "string",
                    "pattern": f"^{validation.UNIT.pattern}$",
                    "description": "At most 16 characters, no control characters or backslash.",
                },
            },
            ["type", "series", "value"],
        ),
        "Event": _object(
            {
                "time": TIME,
                "type": NAME,
                "text": TEXT,
                "attributes": {"type": "object", "description": "At most 4 KiB as JSON, nested at most 32 deep."},
            },
            ["type"],
        ),
        "Alarm": _object(
            {
                "time": TIME,
                "type": NAME,
                "severity": {"type": "string", "enum": sorted(validation.SEVERITIES)},
                "text": TEXT,
            },
            ["type", "severity"],
            "A repeat of an open alarm of the same type counts it up instead of raising a new one.",
        ),
        "Location": _object(
            {
                "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                "altitude": {"type": "number", "minimum": -100_000, "maximum": 100_000, "nullable": True},
                "time": TIME,
            },
            ["latitude", "longitude"],
        ),
        "Credential": _object(
            {"device_id": {"type": "integer"}, "credential": {"type": "string", "description": "Shown once."}},
            ["device_id", "credential"],
        ),
    }
    paths = {
        "/register": {
            "post": {
                **_operation(
                    "Collect this device's credential (once), or learn that it still waits for acceptance.",
                    body=_object(
                        {
                            "tenant": {"type": "string"},
                            "external_id": {"type": "string", "maxLength": 64},
                            "registration_token": {"type": "string"},
                        },
                        ["tenant", "external_id", "registration_token"],
                    ),
                    ok=(201, _ref("Credential")),
                    errors=(400, 404, 405, 413, 415, 429),
                ),
                "security": [],
            }
        },
        "/measurements": {
            "post": _operation(
                "Store one measurement or a batch; all or none.",
                body=_one_or_many("Measurement"),
                ok=(201, stored),
                errors=DEVICE_ERRORS,
            )
        },
        "/events": {
            "post": _operation(
                "Store one event or a batch; all or none.",
                body=_one_or_many("Event"),
                ok=(201, stored),
                errors=DEVICE_ERRORS,
            )
        },
        "/alarms": {
            "post": _operation(
                "Raise one alarm or several; all or none.",
                body=_one_or_many("Alarm"),
                ok=(
                    201,
                    _object(
                        {
                            "alarms": {
                                "type": "array",
                                "items": _object(
                                    {"id": {"type": "integer"}, "count": {"type": "integer"}}, ["id", "count"]
                                ),
                            }
                        },
                        ["alarms"],
                    ),
                ),
                errors=DEVICE_ERRORS,
            )
        },
        "/location": {
            "post": _operation(
                "Report the device's position.", body=_ref("Location"), ok=(201, stored), errors=DEVICE_ERRORS
            )
        },
        "/heartbeat": {
            "post": _operation(
                "Proof of life, optionally with the running firmware version (an empty body is fine).",
                body=_object({"firmware_version": {"type": "string", "maxLength": 64, "nullable": True}}, []),
                ok=(200, _object({"status": {"type": "string", "enum": ["ok"]}}, ["status"])),
                errors=DEVICE_ERRORS,
                body_required=False,
            )
        },
        "/operations": {
            "get": _operation(
                "This device's pending operations, oldest first (at most 100).",
                body=None,
                ok=(
                    200,
                    _object(
                        {
                            "operations": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "id": {"type": "integer"},
                                        "kind": {"type": "string"},
                                        "parameters": {"type": "object"},
                                    },
                                    ["id", "kind", "parameters"],
                                ),
                            }
                        },
                        ["operations"],
                    ),
                ),
                errors=(401, 403, 405, 429),
            )
        },
        "/operations/{operation_id}": {
            "post": {
                **_operation(
                    "Report that an operation started, succeeded or failed.",
                    body=_object(
                        {
                            "status": {"type": "string", "enum": sorted(OPERATION_TRANSITIONS)},
                            "message": {"type": "string", "maxLength": MESSAGE_LENGTH},
                        },
                        ["status"],
                    ),
                    ok=(
                        200,
                        _object(
                            {
                                "id": {"type": "integer"},
                                "status": {"type": "string", "enum": sorted(OPERATION_TRANSITIONS)},
                            },
                            ["id", "status"],
                        ),
                    ),
                    errors=(*DEVICE_ERRORS, 404, 409),
                ),
                "parameters": [
                    {
                        "name": "operation_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 0},
                    }
                ],
            }
        },
        "/credential/rotate": {
            "post": _operation(
                "Swap the current credential for a new one; the old one stops working at once.",
                body=None,
                ok=(200, _ref("Credential")),
                errors=DEVICE_ERRORS,
            )
        },
    }
    paths["/register"]["post"]["responses"]["202"] = _pending()
    # What higher apps serve here (firmware updates), registered through devices.device_api.routes.
    paths.update(routes.openapi_paths())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "cot device API",
            "version": "1",
            "description": "What a device does with its own credential. Every endpoint but /register needs "
            "'Authorization: Bearer cot_dev_…'; the device is always the credential's, never one named in a body. "
            "See docs/devices.md and, for firmware updates, docs/device-updates.md.",
        },
        "servers": [{"url": "/api/device/v1"}],
        "security": [{"deviceCredential": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"deviceCredential": {"type": "http", "scheme": "bearer"}},
        },
    }
