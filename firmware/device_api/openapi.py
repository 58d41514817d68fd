"""The firmware paths of the device API's OpenAPI document (``GET /api/device/v1/schema``).

Built from the same constants the views validate with, and added to the device
document through ``devices.device_api.routes`` (devices never imports firmware).
"""

from __future__ import annotations

from typing import Any

from devices.device_api.openapi import DEVICE_ERRORS, JSON, _errors, _object, _operation
from firmware.device_api.views import ERROR_CODE, MAX_SECURITY_VERSION, OCTETS
from firmware.models import RolloutTarget
from firmware.services.device_updates import REPORTABLE

STATES = sorted(RolloutTarget.Status.values)
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


def _target_state() -> dict[str, Any]:
    return _object(
        {
            "target": {"type": "integer"},
            "status": {"type": "string", "enum": STATES},
            "progress": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True},
            "error_code": {"type": "string", "description": "Empty, or why the target failed or was skipped."},
        },
        ["target", "status", "progress", "error_code"],
    )


def _offer() -> dict[str, Any]:
    return _object(
        {
            "target": {"type": "integer", "description": "Name it in every status report."},
            "status": {"type": "string", "enum": ["offered", "downloading", "downloaded", "verified", "installing"]},
            "version": {"type": "string"},
            "security_version": {"type": "integer", "minimum": 0},
            "sha256": SHA256,
            "size": {"type": "integer", "minimum": 0},
            "manifest": {
                "type": "object",
                "description": "The signed manifest (format cot-firmware-manifest/1); the signature covers its "
                "RFC 8785 serialization.",
            },
            "signature": {
                "type": "string",
                "nullable": True,
                "description": "Base64 Ed25519 signature; null for an image released unsigned (policy allowing).",
            },
            "key_id": {"type": "string", "nullable": True, "description": "First 16 hex digits of the key's SHA-256."},
            "download_url": {"type": "string", "format": "uri"},
        },
        [
            "target",
            "status",
            "version",
            "security_version",
            "sha256",
            "size",
            "manifest",
            "signature",
            "key_id",
            "download_url",
        ],
    )


def paths() -> dict[str, Any]:
    """``/firmware/next``, ``/firmware/status``, ``/firmware/keys``, ``/firmware/images/{image_id}/download``."""
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until the next poll."}}
    next_get = _operation(
        "The update this device should install now (the same one again while it is open), or 204: poll later.",
        body=None,
        ok=(200, _offer()),
        errors=(400, 401, 403, 405, 429),
    )
    next_get["responses"]["204"] = {
        "description": "Nothing to do now; poll again after Retry-After seconds (jittered, shorter before a "
        "maintenance window opens).",
        "headers": retry_after,
    }
    next_get["parameters"] = [
        {
            "name": "security_version",
            "in": "query",
            "required": True,
            "description": "The security version the device runs; images below it are never offered.",
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SECURITY_VERSION},
        },
        {
            "name": "version",
            "in": "query",
            "required": False,
            "description": "The version the device runs (recorded as its firmware version).",
            "schema": {"type": "string", "maxLength": 64},
        },
    ]
    status_post = _operation(
        "Report progress or an outcome for a target; duplicates and late reports change nothing and get the "
        "current state.",
        body=_object(
            {
                "target": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                "status": {"type": "string", "enum": sorted(REPORTABLE)},
                "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                "error_code": {"type": "string", "pattern": f"^{ERROR_CODE.pattern}$"},
                "version": {
                    "type": "string",
                    "maxLength": 64,
                    "description": "With succeeded (required): the version running after the restart.",
                },
            },
            ["target", "status"],
        ),
        ok=(200, _target_state()),
        errors=(*DEVICE_ERRORS, 404, 409),
    )
    keys_get = _operation(
        "The organisation's active firmware signing keys (prefer keys provisioned at the factory).",
        body=None,
        ok=(
            200,
            _object(
                {
                    "keys": {
                        "type": "array",
                        "items": _object(
                            {"key_id": {"type": "string"}, "public_key": {"type": "string"}},
                            ["key_id", "public_key"],
                        ),
                    }
                },
                ["keys"],
            ),
        ),
        errors=(401, 403, 405, 429),
    )
    binary = {OCTETS: {"schema": {"type": "string", "format": "binary"}}}
    download_get: dict[str, Any] = {
        "summary": "The image's bytes, only while this device has an open target with it (404 otherwise, the "
        "same as for a missing image). Range (one range), If-Range and If-None-Match with ETag = the quoted sha256.",
        "parameters": [
            {"name": "image_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}},
            {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
            {"name": "If-Range", "in": "header", "required": False, "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "The whole image.", "content": binary},
            "206": {"description": "The requested range (Content-Range).", "content": binary},
            "304": {"description": "If-None-Match matched the ETag."},
            **_errors(401, 403, 404, 405, 416, 429),
            "503": {"description": "The stored file is unavailable; retry later.", "content": {JSON: {}}},
        },
    }
    head = {**download_get, "summary": "Size, ETag and Accept-Ranges of the image, without its bytes."}
    return {
        "/firmware/next": {"get": next_get},
        "/firmware/status": {"post": status_post},
        "/firmware/keys": {"get": keys_get},
        "/firmware/images/{image_id}/download": {"get": download_get, "head": head},
    }
