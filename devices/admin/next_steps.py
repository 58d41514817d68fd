"""What an empty device page says to do next; shared by the device, group, registration and alarm lists."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from devices.models import DeviceRegistration
from tenants import access


def next_steps(request: HttpRequest, site_name: str) -> dict[str, Any]:
    """What an empty device page tells the caller to do next (``admin/devices/_next_steps.html``).

    Administrators are shown how to register a device; support engineers that the
    tenant's administrators do; everyone else whom to ask for rights on a group.
    """
    caller = access.caller_for(request.user)
    return {
        "may_register": access.can_add(request.user, DeviceRegistration),
        "acts_as_admin": caller is not None and caller.acts_as_admin,
        "tenant_name": caller.tenant.name if caller is not None else "",
        "registration_add_url": reverse(f"{site_name}:devices_deviceregistration_add"),
        "registration_upload_url": reverse(f"{site_name}:devices_deviceregistration_upload"),
        "registrations_url": reverse(f"{site_name}:devices_deviceregistration_changelist"),
    }
