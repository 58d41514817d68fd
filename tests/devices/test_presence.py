"""Online is right for any heartbeat interval, including intervals shorter than the last-seen write throttle."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from devices.models import Device
from devices.services.registry import do_create_device_type
from tests.factories import api_client, device_client, make_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def _online(client: Any, device: Device) -> tuple[bool, bool]:
    """What the API says: the device's own ``online`` field, and whether ``?online=true`` lists it."""
    detail = client.get(f"/api/v1/devices/{device.pk}/").json()["online"]
    listed = {row["id"] for row in client.get("/api/v1/devices/", {"online": "true"}).json()["results"]}
    return detail, device.pk in listed


def test_a_device_keeping_a_short_interval_never_shows_offline(acme, acme_admin):
    interval = 10
    assert interval * 2 < settings.DEVICE_LAST_SEEN_RESOLUTION_SECONDS  # shorter than the write throttle
    device, credential = make_device(acme)
    device_type = do_create_device_type(
        manufacturer="Fast", model="10s", heartbeat_interval=interval, actor=None, tenant=acme
    )
    Device.objects.filter(pk=device.pk).update(type=device_type)
    admin = api_client(acme_admin)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        for beat in range(7):
            clock.move_to(start + timedelta(seconds=beat * interval))
            response = device_client(credential).post("/api/device/v1/heartbeat", {}, format="json")
            assert response.status_code == 200
            clock.move_to(start + timedelta(seconds=beat * interval + interval - 1))  # just before the next beat
            assert _online(admin, device) == (True, True), f"offline after beat {beat}"
        # Silent for longer than twice the interval (plus the documented lag): offline.
        clock.move_to(start + timedelta(seconds=6 * interval + 2 * interval + interval // 2 + 1))
        assert _online(admin, device) == (False, False)
