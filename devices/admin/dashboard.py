"""The devices app's panels on the cockpit's home page (``cot.cockpit.dashboard``).

Every figure is one aggregate over ``Model.objects.restrict(user, "view")`` (see
``devices.selectors``): an administrator's panels count the tenant's fleet, a Standard or
Business user's the devices of the groups granted to them. Each number links to the list
it counts, filtered the same way. The panels that scan the whole fleet or a day of
payload (silent devices, firmware versions, values per hour) are lazy: the page asks for
them once loaded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from cot.cockpit.dashboard import DashboardPanel, digest, per_request, register_panel
from devices import selectors
from devices.admin.next_steps import next_steps
from devices.models import Alarm, Device, DeviceGroup, DeviceRegistration
from tenants import access
from tenants.models import Action


def _list_url(model: str, **filters: str) -> str:
    url = reverse(f"cockpit:devices_{model}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


@per_request
def granted_groups(request: HttpRequest) -> str:
    """The groups a constrained caller sees (their reach changes with their rights); nothing for administrators."""
    caller = access.caller_for(request.user)
    if caller is None or caller.acts_as_admin:
        return ""
    groups = DeviceGroup.objects.restrict(request.user, Action.VIEW).order_by("pk").values_list("pk", flat=True)
    return digest(list(groups))


@per_request
def sees_devices(request: HttpRequest) -> bool:
    """Whether the caller's role may ever view devices (a role without the right gets no device panels)."""
    return access.may_view_model(request.user, Device)


def fleet(request: HttpRequest) -> dict[str, Any] | None:
    """Devices by status and presence."""
    if not sees_devices(request):
        return None
    counts = selectors.fleet_counts(request.user)
    statuses = [
        {"label": label, "devices": counts[status], "url": _list_url("device", status__exact=status)}
        for status, label in Device.Status.choices
    ]
    return {
        "total": counts["total"],
        "statuses": statuses,
        "online": counts["online"],
        "offline": counts["offline"],
        "never_seen": counts["never_seen"],
        "list_url": _list_url("device"),
        "online_url": _list_url("device", status__exact=Device.Status.ACTIVE, online="yes"),
        "offline_url": _list_url("device", status__exact=Device.Status.ACTIVE, online="no"),
        "next_steps": next_steps(request, "cockpit") if not counts["total"] else None,
    }


def alarms(request: HttpRequest) -> dict[str, Any] | None:
    """Open alarms by severity, each figure linked to the alarm list filtered to it."""
    if not sees_devices(request):
        return None
    counts = selectors.open_alarm_counts(request.user)
    rows = [
        {
            "severity": severity,
            "label": label,
            "active": counts[severity][Alarm.Status.ACTIVE],
            "acknowledged": counts[severity][Alarm.Status.ACKNOWLEDGED],
            "active_url": _list_url("alarm", severity__exact=severity, status__exact=Alarm.Status.ACTIVE),
            "acknowledged_url": _list_url("alarm", severity__exact=severity, status__exact=Alarm.Status.ACKNOWLEDGED),
        }
        for severity, label in Alarm.Severity.choices
    ]
    open_alarms = sum(sum(by_status.values()) for by_status in counts.values())
    return {"rows": rows, "open": open_alarms}


def silent(request: HttpRequest) -> dict[str, Any] | None:
    """Active devices not heard within their interval, longest silent first."""
    if not sees_devices(request):
        return None
    rows = selectors.silent_devices(request.user)
    for row in rows:
        row["url"] = reverse("cockpit:devices_device_change", args=[row["pk"]])
    return {"devices": rows}


def firmware_versions(request: HttpRequest) -> dict[str, Any] | None:
    """Active devices per firmware version (the most common ones)."""
    if not sees_devices(request):
        return None
    rows = selectors.firmware_versions(request.user)
    for row in rows:
        row["url"] = _list_url("device", status__exact=Device.Status.ACTIVE, firmware_version=row["firmware_version"])
    return {"versions": rows}


def registrations(request: HttpRequest) -> dict[str, Any] | None:
    """Registrations waiting for an administrator's acceptance (for those who may see registrations)."""
    if not access.may_view_model(request.user, DeviceRegistration):
        return None
    rows = DeviceRegistration.objects.restrict(request.user, Action.VIEW)
    waiting = rows.filter(status=DeviceRegistration.Status.PENDING).count()
    return {
        "waiting": waiting,
        "url": _list_url("deviceregistration", status__exact=DeviceRegistration.Status.PENDING),
    }


def ingest(request: HttpRequest) -> dict[str, Any] | None:
    """Measurements per hour over the last day, as bars scaled to the busiest hour."""
    if not sees_devices(request):
        return None
    hours = selectors.measurements_per_hour(request.user)
    peak = max((hour["values"] for hour in hours), default=0)
    for hour in hours:
        hour["percent"] = round(100 * hour["values"] / peak, 1) if peak else 0
    return {"hours": hours, "total": sum(hour["values"] for hour in hours), "peak": peak}


def device_map(request: HttpRequest) -> dict[str, Any] | None:
    """The last reported locations of the caller's devices (the most recently located ones), for the map."""
    if not sees_devices(request):
        return None
    points, located = selectors.located_devices(request.user, settings.COCKPIT_MAP_MAX_MARKERS)
    return {
        "points": points,
        "located": located,
        "device_url": reverse("cockpit:devices_device_change", args=[0]).replace("/0/", "/{id}/"),
        "tile_url": settings.COCKPIT_MAP_TILE_URL,
        "tile_attribution": settings.COCKPIT_MAP_TILE_ATTRIBUTION,
    }


PANELS = (
    DashboardPanel("fleet", "Devices", "admin/devices/dashboard/fleet.html", fleet, order=10, reach=granted_groups),
    DashboardPanel("alarms", "Open alarms", "admin/devices/dashboard/alarms.html", alarms, 20, reach=granted_groups),
    DashboardPanel(
        "silent", "Not heard from", "admin/devices/dashboard/silent.html", silent, 30, reach=granted_groups, lazy=True
    ),
    DashboardPanel(
        "firmware-versions",
        "Firmware versions",
        "admin/devices/dashboard/firmware_versions.html",
        firmware_versions,
        40,
        reach=granted_groups,
        lazy=True,
    ),
    DashboardPanel("registrations", "Registrations", "admin/devices/dashboard/registrations.html", registrations, 35),
    DashboardPanel(
        "ingest",
        "Measurements, last 24 hours",
        "admin/devices/dashboard/ingest.html",
        ingest,
        70,
        wide=True,
        reach=granted_groups,
        lazy=True,
    ),
    # Kept as drawn while the page refreshes the others: a refresh would undo the operator's zoom.
    DashboardPanel(
        "map",
        "Device locations",
        "admin/devices/dashboard/map.html",
        device_map,
        80,
        wide=True,
        reach=granted_groups,
        lazy=True,
        refreshed=False,
    ),
)


def register() -> None:
    """Put the devices app's panels on the cockpit's home page."""
    for panel in PANELS:
        register_panel(panel)
