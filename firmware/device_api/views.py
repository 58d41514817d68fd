"""The device update protocol: ``/api/device/v1/firmware/…`` (docs/device-updates.md).

Plain Django views on the device door's ``device_endpoint`` (credential, device and tenant
rate limits, bounded JSON bodies, JSON errors), registered from ``FirmwareConfig.ready()``
through ``devices.device_api.routes``. What is offered and what a report changes lives in
``firmware.services.device_updates``; these views validate input and shape answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse, StreamingHttpResponse

from cot.exceptions import Conflict
from devices.device_api import validation
from devices.device_api.validation import PayloadError
from devices.device_api.views import device_endpoint
from devices.models import Device
from devices.services.registry import record_firmware_version
from firmware import selectors, storage
from firmware.models import FirmwareImage, RolloutTarget, SigningKey
from firmware.services.device_updates import (
    REPORTABLE,
    Answer,
    NoOffer,
    NotFound,
    Report,
    download_image,
    next_offer,
    report_status,
)

MAX_SECURITY_VERSION = 2**31 - 1
ERROR_CODE = re.compile(r"[a-z0-9_.:-]{1,64}")
STATUS_FIELDS = frozenset({"target", "status", "progress", "error_code", "version"})
NOT_FOUND = "No such firmware image for this device."
CHUNK = 256 * 1024
OCTETS = "application/octet-stream"
# bytes=START-END, bytes=START- or bytes=-SUFFIX; one range only.
RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")  # ASCII digits only (\d would take any script's)


def _error(status: int, detail: str, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _int_param(request: HttpRequest, name: str, *, required: bool) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        if required:
            raise PayloadError({name: "Required: the security version the device runs (an integer)."})
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > MAX_SECURITY_VERSION:
        raise PayloadError({name: f"An integer from 0 to {MAX_SECURITY_VERSION}."})
    return int(raw)


def offer_body(request: HttpRequest, target: RolloutTarget) -> dict[str, Any]:
    """What a device needs to fetch, check and install the image of ``target``."""
    image = target.rollout.image
    key_id = None
    if image.signed_by_id is not None:
        key_id = SigningKey.objects.filter(pk=image.signed_by_id).values_list("key_id", flat=True).first()
    path = f"/api/device/v1/firmware/images/{image.pk}/download"
    return {
        "target": target.pk,
        "status": target.status,
        "version": image.version,
        "security_version": image.security_version,
        "sha256": image.sha256,
        "size": image.size,
        "manifest": image.manifest if image.manifest is not None else selectors.manifest_for(image),
        "signature": image.signature or None,
        "key_id": key_id,
        "download_url": request.build_absolute_uri(path),
    }


@device_endpoint("GET")
def next_update(request: HttpRequest, device: Device, payload: Any) -> HttpResponseBase:
    """``?security_version=N[&version=V]`` → 200 with the offer, or 204 with ``Retry-After`` (seconds)."""
    unknown = set(request.GET) - {"security_version", "version"}
    if unknown:
        raise PayloadError(dict.fromkeys(sorted(unknown), "Unknown parameter."))
    security_version = _int_param(request, "security_version", required=True)
    assert security_version is not None
    version = request.GET.get("version")
    if version is not None:
        if not version or not validation.is_label(version):
            raise PayloadError(
                {"version": "The running version: 1 to 64 characters, no control characters or direction overrides."}
            )
        if version != device.firmware_version:
            record_firmware_version(device, version)
    answer = next_offer(device, security_version=security_version)
    if isinstance(answer, NoOffer):
        response = HttpResponse(status=204)
        response["Retry-After"] = str(answer.poll_seconds)
        response["Cache-Control"] = "no-store"
        return response
    return JsonResponse(offer_body(request, answer))


def parse_report(payload: Any) -> Report:
    """The body of ``POST firmware/status``, or ``PayloadError`` naming each bad field."""
    if not isinstance(payload, dict):
        raise PayloadError({"detail": 'Send {"target": …, "status": …}.'})
    errors: dict[str, str] = dict.fromkeys(sorted(payload.keys() - STATUS_FIELDS), "Unknown field.")
    target, status = payload.get("target"), payload.get("status")
    if isinstance(target, bool) or not isinstance(target, int) or not 0 < target < 2**63:
        errors["target"] = "The target id from firmware/next (an integer)."
    if not isinstance(status, str) or status not in REPORTABLE:
        errors["status"] = f"One of {', '.join(sorted(REPORTABLE))}."
    progress = payload.get("progress")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100
    ):
        errors["progress"] = "An integer percentage from 0 to 100."
    error_code = payload.get("error_code", "")
    if error_code is None:
        error_code = ""
    if not isinstance(error_code, str) or (error_code and not ERROR_CODE.fullmatch(error_code)):
        errors["error_code"] = "Up to 64 of a-z 0-9 _ . : - (such as flash_write_failed)."
    version = payload.get("version", "")
    if version is None:
        version = ""
    if not validation.is_label(version):
        errors["version"] = "Text of at most 64 characters, without control characters or direction overrides."
    elif status == RolloutTarget.Status.SUCCEEDED and not version:
        errors["version"] = "Required with succeeded: the version the device runs after its restart."
    if errors:
        raise PayloadError(errors)
    assert isinstance(target, int) and isinstance(status, str)
    return Report(target_id=target, status=status, progress=progress, error_code=error_code, version=version)


def status_body(answer: Answer) -> dict[str, Any]:
    return {
        "target": answer.target,
        "status": answer.status,
        "progress": answer.progress,
        "error_code": answer.error_code,
    }


@device_endpoint("POST")
def report(request: HttpRequest, device: Device, payload: Any) -> HttpResponseBase:
    """``{"target", "status", "progress"?, "error_code"?, "version"?}`` → the target's state afterwards."""
    parsed = parse_report(payload)
    try:
        answer = report_status(device, parsed)
    except NotFound:
        return _error(404, "No such firmware target for this device.")
    except Conflict as exc:
        return _error(409, " ".join(exc.messages))
    return JsonResponse(status_body(answer))


@device_endpoint("GET")
def signing_keys(request: HttpRequest, device: Device, payload: Any) -> HttpResponseBase:
    """The tenant's active signing keys (``key_id``, ``public_key`` as base64 of 32 bytes).

    For devices and simulators that learn their trust anchors on first contact; a real
    device should carry its keys from the factory (docs/device-updates.md, "Keys").
    """
    keys = SigningKey.objects.filter(tenant_id=device.tenant_id, revoked_at__isnull=True).order_by("key_id")
    return JsonResponse({"keys": [{"key_id": k.key_id, "public_key": k.public_key} for k in keys]})


def _etag(image: FirmwareImage) -> str:
    return f'"{image.sha256}"'


def _byte_range(header: str, size: int) -> tuple[int, int] | bool | None:
    """``(first, last)`` of a satisfiable single range, None to ignore the header, False if unsatisfiable."""
    match = RANGE.fullmatch(header.replace(" ", ""))
    if match is None or (not match[1] and not match[2]) or len(match[1]) > 100 or len(match[2]) > 100:
        return None  # malformed, several ranges or another unit: RFC 9110 lets the server send it all
    # Python's integers are unbounded: a bound beyond the file is clamped (or 416), as for any other.
    if not match[1]:
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else None
    if last is not None and last < first:
        return None
    if first >= size:
        return False
    return first, size - 1 if last is None else min(last, size - 1)


def _stream(blob: Any, first: int, length: int) -> Iterator[bytes]:
    try:
        blob.seek(first)
        left = length
        while left > 0:
            chunk = blob.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        blob.close()


@device_endpoint("GET", "HEAD")
def download(request: HttpRequest, device: Device, payload: Any, image_id: int) -> HttpResponseBase:
    """The image bytes, for a device with an open target of it; Range, If-Range, ETag (the sha256), HEAD."""
    image = download_image(device, image_id)
    if image is None:
        return _error(404, NOT_FOUND)
    etag, size = _etag(image), image.size
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "private, no-transform"}
    if etag in [tag.strip() for tag in request.META.get("HTTP_IF_NONE_MATCH", "").split(",")]:
        response: HttpResponseBase = HttpResponse(status=304)
        for name, value in headers.items():
            response[name] = value
        return response
    first, last, status = 0, size - 1, 200
    wanted = request.META.get("HTTP_RANGE")
    if_range = request.META.get("HTTP_IF_RANGE")
    if wanted and (if_range is None or if_range.strip() == etag):
        span = _byte_range(wanted, size)
        if span is False:
            return _error(416, f"The image has {size} bytes.", Content_Range=f"bytes */{size}", **headers)
        if isinstance(span, tuple):
            first, last = span
            status = 206
    length = max(0, last - first + 1)
    if request.method == "HEAD" or length == 0:
        response = HttpResponse(status=status, content_type=OCTETS)
    else:
        try:
            blob = storage.open_blob(image.sha256)
        except OSError:
            return _error(503, "The image's file is not available right now; try again later.", Retry_After="60")
        response = StreamingHttpResponse(_stream(blob, first, length), status=status, content_type=OCTETS)
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(length)
    response["Content-Disposition"] = f'attachment; filename="firmware-{image.version}.bin"'
    if status == 206:
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    return response
