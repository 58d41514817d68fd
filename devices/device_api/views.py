"""The device API (``/api/device/v1/``): what a device credential can do, and nothing more.

Plain Django views rather than DRF: this is the hot path (every measurement of every
device), and DRF's per-request machinery costs more than the work itself. Each view
receives the device from its credential, never from the body.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

import audit
from audit.request_meta import client_ip
from cot import ratelimit
from devices.device_api import store, validation
from devices.device_api.auth import DeviceAuthError, authenticate_device
from devices.device_api.validation import PayloadError
from devices.models import Device, Operation, OperationResult
from devices.presence import type_interval, write_lag
from devices.services.registration import (
    RegistrationPaused,
    RegistrationRefused,
    RegistrationThrottled,
    device_register,
)
from devices.services.registry import do_rotate_device_credential

# JSON for almost everything; a firmware download streams bytes (higher apps' views, devices.device_api.routes).
DeviceView = Callable[..., HttpResponseBase]


def _error(status: int, detail: Any, **headers: str) -> JsonResponse:
    body = detail if isinstance(detail, dict) else {"detail": detail}
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _body(request: HttpRequest) -> Any:
    # cot.body_limits has already refused bodies over the limit (413), before reading them.
    raw = request.body
    if not raw:
        return {}
    if request.content_type != "application/json":
        raise PayloadError({"detail": "Send JSON with 'Content-Type: application/json'."}, 415)
    return validation.parse_json(raw)


def device_endpoint(*methods: str) -> Callable[[DeviceView], Callable[..., HttpResponseBase]]:
    """Authenticate the device, apply its and its tenant's rate limits, parse JSON, map errors.

    The view gets ``(request, device, payload, *args)``: ``payload`` is the parsed JSON body
    of a POST, None otherwise. It usually answers JSON; any response works (a streamed
    firmware download), and errors raised as ``PayloadError`` are JSON either way.
    """

    def decorator(func: DeviceView) -> Callable[..., HttpResponseBase]:
        @csrf_exempt
        @wraps(func)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                return _error(405, f"Use {' or '.join(methods)}.", Allow=", ".join(methods))
            try:
                device = authenticate_device(request)
                tenant = device.tenant
                refusal = ratelimit.check(
                    ratelimit.limits_for("device", device.pk, tenant.rates("device"))
                    + ratelimit.limits_for("tenant_devices", tenant.pk, tenant.rates("tenant_devices"))
                )
                if refusal is not None:
                    return _error(429, refusal.message, **{"Retry-After": str(refusal.retry_after)})
                request.cot_device = device  # type: ignore[attr-defined]  # the audit actor
                payload = _body(request) if request.method == "POST" else None
                response = func(request, device, payload, *args, **kwargs)
            except DeviceAuthError as exc:
                headers = {401: {"WWW-Authenticate": "Bearer"}, 503: {"Retry-After": "60"}}.get(exc.status, {})
                return _error(exc.status, exc.message, **headers)
            except PayloadError as exc:
                return _error(exc.status, exc.errors)
            except ValidationError as exc:
                return _error(400, exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
            if response.status_code < 400:
                store.touch_device(device, timezone.now(), write_lag(type_interval(device.type_id)))
            return response

        return view

    return decorator


@csrf_exempt
def register(request: HttpRequest) -> JsonResponse:
    """``{"tenant", "external_id", "registration_token"}`` → 202 pending, or the credential once.

    A missing or wrong token gets the same 404 as an unknown id; too many wrong tokens
    from one address or for one external id get 429 with ``Retry-After``.
    """
    if request.method != "POST":
        return _error(405, "Use POST.", Allow="POST")
    source = client_ip(request) or "unknown"
    refusal = ratelimit.check(ratelimit.limits_for("registration", source, settings.RATE_LIMITS["registration"]))
    if refusal is not None:
        return _error(429, refusal.message, **{"Retry-After": str(refusal.retry_after)})
    try:
        payload = _body(request)
    except PayloadError as exc:
        return _error(exc.status, exc.errors)
    fields = {"tenant", "external_id", "registration_token"}
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("tenant"), str)
        or not isinstance(payload.get("external_id"), str)
    ):
        return _error(400, "Send 'tenant', 'external_id' and 'registration_token'.")
    if payload.keys() - fields:
        return _error(400, dict.fromkeys(payload.keys() - fields, "Unknown field."))
    if validation.NUL in payload["tenant"] or validation.NUL in payload["external_id"]:  # PostgreSQL would refuse them
        return _error(400, "'tenant' and 'external_id' cannot contain NUL characters.")
    token = payload.get("registration_token")
    try:
        answer = device_register(
            tenant_slug=payload["tenant"],
            external_id=payload["external_id"],
            registration_token=token if isinstance(token, str) else None,
            source=source,
        )
    except RegistrationThrottled as exc:
        return _error(
            429,
            f"Too many wrong registration tokens; retry in {exc.retry_after} s.",
            **{"Retry-After": str(exc.retry_after)},
        )
    except RegistrationRefused:
        return _error(404, "No registration matches; ask the administrator to expect this device.")
    except RegistrationPaused:
        return _error(503, "The organisation is in maintenance; register again later.", **{"Retry-After": "60"})
    if answer.pending:
        return JsonResponse({"status": "pending", "detail": "Waiting for an administrator to accept."}, status=202)
    assert answer.device is not None
    return JsonResponse({"device_id": answer.device.pk, "credential": answer.credential}, status=201)


@device_endpoint("POST")
def measurements(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """One measurement or a batch; all stored or none."""
    items = validation.as_items(payload)
    rows = validation.validate_all(items, validation.measurement)
    return JsonResponse({"stored": store.store_measurements(device, rows)}, status=201)


@device_endpoint("POST")
def events(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """One event or a batch; all stored or none."""
    items = validation.as_items(payload)
    rows = validation.validate_all(items, validation.event)
    return JsonResponse({"stored": store.store_events(device, rows)}, status=201)


@device_endpoint("POST")
def alarms(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """Raise alarms; repeats of an open alarm type count up."""
    items = validation.as_items(payload)
    rows = validation.validate_all(items, validation.alarm)
    return JsonResponse({"alarms": store.store_alarms(device, rows)}, status=201)


LOCATION_FIELDS = frozenset({"latitude", "longitude", "altitude", "time"})


@device_endpoint("POST")
def location(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """The device's current position."""
    if not isinstance(payload, dict):
        raise PayloadError({"detail": "Send one JSON object."})
    errors: dict[str, str] = dict.fromkeys(payload.keys() - LOCATION_FIELDS, "Unknown field.")
    bounds = {"latitude": 90.0, "longitude": 180.0, "altitude": 100_000.0}
    values: dict[str, Any] = {}
    for name, bound in bounds.items():
        value = payload.get(name)
        if value is None and name == "altitude":
            values[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not -bound <= value <= bound:
            errors[name] = f"A number between -{bound:g} and {bound:g}."
        values[name] = value
    located_at = validation._time(payload.get("time"), errors, validation.Clock.current())
    if errors:
        raise PayloadError(errors)
    store.touch_device(device, timezone.now(), 0, located_at=located_at, **values)
    return JsonResponse({"stored": 1}, status=201)


@device_endpoint("POST")
def heartbeat(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """Proof of life, optionally with the running firmware version."""
    if not isinstance(payload, dict) or payload.keys() - {"firmware_version"}:
        raise PayloadError({"detail": 'Send {} or {"firmware_version": "…"}.'})
    version = payload.get("firmware_version")
    if version is not None:
        if not validation.is_label(version):
            raise PayloadError(
                {"firmware_version": "At most 64 characters, no control characters or direction overrides."}
            )
        store.touch_device(device, timezone.now(), 0, firmware_version=version)
    return JsonResponse({"status": "ok"})


@device_endpoint("GET")
def pending_operations(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """This device's pending operations, oldest first."""
    rows = Operation.objects.filter(device=device, status=Operation.Status.PENDING).order_by("id")[:100]
    return JsonResponse({"operations": [{"id": op.pk, "kind": op.kind, "parameters": op.parameters} for op in rows]})


# What a failure report may say: Operation.failure_reason holds this much.
MESSAGE_LENGTH = Operation._meta.get_field("failure_reason").max_length or 500
OPERATION_TRANSITIONS: dict[str, set[str]] = {
    Operation.Status.EXECUTING: {Operation.Status.PENDING},
    Operation.Status.SUCCESSFUL: {Operation.Status.PENDING, Operation.Status.EXECUTING},
    Operation.Status.FAILED: {Operation.Status.PENDING, Operation.Status.EXECUTING},
}


@device_endpoint("POST")
def operation_status(request: HttpRequest, device: Device, payload: Any, operation_id: int) -> JsonResponse:
    """Report ``EXECUTING``, ``SUCCESSFUL`` or ``FAILED`` (with a message) for one of this device's operations."""
    if not isinstance(payload, dict) or payload.keys() - {"status", "message"}:
        raise PayloadError({"detail": 'Send {"status": …, "message": …}.'})
    status, message = payload.get("status"), payload.get("message", "")
    if not isinstance(status, str) or status not in OPERATION_TRANSITIONS:
        raise PayloadError({"status": "One of EXECUTING, SUCCESSFUL, FAILED."})
    if not validation.plain_text(message, MESSAGE_LENGTH):
        raise PayloadError({"message": f"Text of at most {MESSAGE_LENGTH} characters, without NUL."})
    with transaction.atomic():
        operation = Operation.objects.select_for_update().filter(pk=operation_id, device=device).first()
        if operation is None:
            return _error(404, "No such operation for this device.")
        if operation.status not in OPERATION_TRANSITIONS[status]:
            return _error(409, f"The operation is {operation.status}; it cannot become {status}.")
        Operation.objects.filter(pk=operation.pk).update(
            status=status, failure_reason=message if status == Operation.Status.FAILED else ""
        )
        OperationResult.objects.create(
            tenant_id=device.tenant_id, device_id=device.pk, operation_id=operation.pk, status=status, message=message
        )
        audit.record(
            f"operation.{status.lower()}", tenant=device.tenant_id, target=operation, data={"message": message}
        )
    return JsonResponse({"id": operation.pk, "status": status})


@device_endpoint("POST")
def rotate_credential(request: HttpRequest, device: Device, payload: Any) -> JsonResponse:
    """Swap the current credential for a new one; the old one stops working at once."""
    return JsonResponse({"device_id": device.pk, "credential": do_rotate_device_credential(device, actor=None)})
