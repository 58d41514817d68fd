"""The device page's extension point: sections that apps above ``devices`` register (``devices.admin.sections``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from devices.admin import sections
from devices.admin.sections import DeviceSection, register_device_section
from devices.models import Device
from tests.factories import make_user
from tests.support.cockpit import admin_url, cockpit_client
from tests.support.device_rows import placed_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def registry() -> Iterator[dict[str, DeviceSection]]:
    """The registry, restored after the test (firmware's own section stays registered)."""
    saved = dict(sections._SECTIONS)
    yield sections._SECTIONS
    sections._SECTIONS.clear()
    sections._SECTIONS.update(saved)


def _only_for_admins(request: Any, device: Device) -> dict[str, Any] | None:
    return {"note": f"about {device.external_id}"} if request.user.email.startswith("admin@") else None


NOTE = DeviceSection(
    key="note", title="A note", template="admin/firmware/rollout/device_history.html", context=_only_for_admins
)


def test_firmware_registers_its_history_section():
    assert "firmware" in {section.key for section in sections.registered_sections()}


def test_registering_again_is_harmless_but_another_section_under_a_taken_key_is_refused(registry):
    register_device_section(NOTE)
    register_device_section(NOTE)
    other = DeviceSection(key="note", title="Another", template=NOTE.template, context=_only_for_admins)
    with pytest.raises(ImproperlyConfigured):
        register_device_section(other)


def test_sections_render_in_order_and_may_leave_a_caller_out(registry, acme, acme_admin):
    register_device_section(NOTE)
    device = placed_device(acme)
    page = cockpit_client(acme_admin).get(admin_url(Device, "change", device.pk))
    keys = [section["key"] for section in page.context["device_sections"]]
    assert keys == ["firmware", "note"]  # order 50, then the default 100
    assert 'id="device-note"' in page.content.decode()
    other_admin = make_user(acme, "administrator", email="second@acme.test")
    again = cockpit_client(other_admin).get(admin_url(Device, "change", device.pk))
    assert [section["key"] for section in again.context["device_sections"]] == ["firmware"]
    assert 'id="device-note"' not in again.content.decode()
