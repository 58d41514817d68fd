"""Device authentication: the credential names the device; nothing in the body can."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from audit.request_meta import is_trusted_proxy
from devices.models import Device
from tenants.tokens import secret_digest


class DeviceAuthError(Exception):
    """A refused device request: 401 for bad credentials, 403 for a known but barred device."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def authenticate_device(request: HttpRequest) -> Device:
    """The device whose credential the request carries; at most one indexed lookup."""
    keyword, _, secret = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    secret = secret.strip()
    if keyword != "Bearer" or not secret:
        raise DeviceAuthError("A device credential is required: 'Authorization: Bearer cot_dev_…'.")
    if not secret.startswith(settings.DEVICE_CREDENTIAL_PREFIX):
        # User tokens and anything else are refused before touching the database.
        raise DeviceAuthError("Invalid device credential.")
    device = Device.objects.select_related("tenant").filter(credential_digest=secret_digest(secret)).first()
    if device is None:
        raise DeviceAuthError("Invalid device credential.")
    if device.status != Device.Status.ACTIVE:
        raise DeviceAuthError(f"This device is {device.status}.", 403)
    if not device.tenant.is_active:
        raise DeviceAuthError("The device's organisation is suspended.", 403)
    if device.certificate_fingerprint:
        _check_certificate(request, device)
    return device


def _check_certificate(request: HttpRequest, device: Device) -> None:
    # The TLS terminator forwards the client certificate's fingerprint; only believe it
    # from a configured proxy, or anyone could claim any certificate.
    presented = ""
    if is_trusted_proxy(request.META.get("REMOTE_ADDR", "")):
        presented = request.META.get(settings.DEVICE_CERT_FINGERPRINT_HEADER, "")
    if presented.replace(":", "").lower() != device.certificate_fingerprint.replace(":", "").lower():
        raise DeviceAuthError("The client certificate does not match this device.")
