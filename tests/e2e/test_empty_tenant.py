"""A new tenant's administrator finds every device page, each saying what to do next (issue 9, point 12)."""

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tenants.models import Role
from tests.e2e.pages import screenshot_dir, signed_in_page
from tests.factories import make_tenant, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])]


def test_empty_tenant_cockpit_shows_device_pages_with_next_steps(
    browser: Browser, live_server: Any, tmp_path: Path
) -> None:
    admin = make_user(make_tenant("acme"), Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    page = signed_in_page(browser, live_server, admin, width=1280, height=800)

    page.goto("/cockpit/")
    expect(page.locator("#panel-fleet")).to_contain_text("No devices yet")
    pages = page.locator("#content-related")  # beside the home page's panels
    for model, entry in (
        ("device", "Devices"),
        ("alarm", "Alarms"),
        ("deviceregistration", "Device registrations"),
        ("devicegroup", "Device groups"),
    ):
        expect(pages.locator(f"th#devices-{model} a")).to_have_text(entry)

    response = page.goto("/cockpit/devices/device/")
    assert response is not None and response.status == 200
    empty = page.locator("#empty-state")
    expect(empty).to_contain_text("No devices yet")
    expect(empty).to_contain_text("see docs/devices.md")
    expect(empty.locator("#register-device")).to_have_attribute("href", "/cockpit/devices/deviceregistration/add/")
    expect(empty.locator("#upload-registrations")).to_have_attribute(
        "href", "/cockpit/devices/deviceregistration/upload/"
    )
    page.screenshot(path=str(screenshot_dir(tmp_path) / "empty-tenant-cockpit.png"))

    empty.locator("#register-device").click()
    expect(page.locator("input[name=external_id]")).to_be_visible()

    for url in (
        "/cockpit/devices/alarm/",
        "/cockpit/devices/deviceregistration/",
        "/cockpit/devices/devicegroup/tree/",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        expect(page.locator("#empty-state")).to_contain_text("Register a device")
