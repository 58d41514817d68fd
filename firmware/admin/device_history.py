"""The device page's firmware history: every rollout the device took part in, newest first.

Registered with ``devices.admin.sections`` (``devices`` cannot import firmware), when
admin autodiscovery imports ``firmware.admin``. The rows are the device's
``RolloutTarget`` rows as the caller may read them (``RolloutTarget.objects.restrict``:
the caller's own tenant only); the device page has already answered 404 for a device out
of the caller's reach.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from devices.admin.sections import DeviceSection, register_device_section
from devices.models import Device
from firmware.models import RolloutTarget
from tenants.models import Action

#: the newest rows shown; a device takes part in a few rollouts a year
HISTORY_ROWS = 50


def firmware_history(request: HttpRequest, device: Device) -> dict[str, Any]:
    """The device's rollout targets the caller may see, with their rollout and image."""
    targets = (
        RolloutTarget.objects.restrict(request.user, Action.VIEW)
        .filter(device_id=device.pk)
        .select_related("rollout", "rollout__image")
        .order_by("-id")[:HISTORY_ROWS]
    )
    return {"targets": list(targets)}


SECTION = DeviceSection(
    key="firmware",
    title="Firmware history",
    template="admin/firmware/rollout/device_history.html",
    context=firmware_history,
    order=50,
)


def register() -> None:
    """Add the section to the device page (idempotent)."""
    register_device_section(SECTION)
