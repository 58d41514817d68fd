"""Rows for the device cockpit tests: types, devices with a group and type, payload data, action posts."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from devices.models import Alarm, Device, DeviceGroup, DeviceType, Event, Measurement
from devices.services.registry import do_create_device_type, do_update_device
from tenants.models import Tenant
from tests.factories import make_device, make_group
from tests.support.cockpit import admin_url

_seq = itertools.count(1)


def make_type(tenant: Tenant, *, certified: bool = False, heartbeat: int = 300) -> DeviceType:
    """A device type of ``tenant`` through its service."""
    n = next(_seq)
    return do_create_device_type(
        manufacturer="Maker",
        model=f"M{n}",
        certified=certified,
        heartbeat_interval=heartbeat,
        actor=None,
        tenant=tenant,
    )


def placed_device(
    tenant: Tenant,
    group: DeviceGroup | None = None,
    device_type: DeviceType | None = None,
    external_id: str | None = None,
) -> Device:
    """A registered device in ``group`` (a new one by default) with ``device_type`` (likewise)."""
    group = group or make_group(tenant)
    device, _ = make_device(tenant, group, external_id)
    return do_update_device(device, {"type": device_type or make_type(tenant)}, actor=None)


def add_measurements(
    device: Device, values: list[tuple[datetime, float]], kind: str = "c8y_Temperature", series: str = "T"
) -> None:
    """Store measurements of one series of ``device`` in the telemetry database."""
    Measurement.objects.bulk_create(
        Measurement(
            tenant_id=device.tenant_id, device_id=device.pk, time=t, type=kind, series=series, value=v, unit="C"
        )
        for t, v in values
    )


def add_alarm(device: Device, kind: str = "high_temperature", severity: str = "MAJOR", status: str = "ACTIVE") -> Alarm:
    """An alarm of ``device`` in the telemetry database."""
    now = timezone.now()
    return Alarm.objects.create(
        tenant_id=device.tenant_id,
        device_id=device.pk,
        type=kind,
        severity=severity,
        status=status,
        text=f"{kind} on {device.external_id}",
        first_time=now - timedelta(minutes=5),
        last_time=now,
    )


def add_event(device: Device, kind: str = "door_opened", text: str = "Door opened") -> Event:
    """An event of ``device`` in the telemetry database."""
    return Event.objects.create(
        tenant_id=device.tenant_id, device_id=device.pk, time=timezone.now(), type=kind, text=text
    )


def run_action(client: Client, model: Any, action: str, pks: list[Any], **extra: Any) -> Any:
    """POST a changelist action for ``pks`` (``apply="1"`` in ``extra`` submits an intermediate page)."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in pks], "index": 0, **extra}
    return client.post(admin_url(model, "changelist"), data)


def messages_of(response: Any) -> list[str]:
    """The texts of the messages a response left for the user."""
    return [str(message) for message in get_messages(response.wsgi_request)]
