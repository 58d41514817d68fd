"""The cockpit's home page in a browser: its figures are the API's, and it keeps itself up to date (issue 13)."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from devices.models import Device
from devices.services.registration import do_create_registration
from devices.services.registry import do_block_devices
from devices.simulator import SimulatedDevice
from tenants.models import Action, Role
from tests.e2e.pages import screenshot_dir, signed_in_page
from tests.factories import api_client, grant, make_device, make_group, make_tenant, make_user
from tests.support.device_rows import add_alarm, add_measurements, make_type, placed_device

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])]


def api_rows(client: Any, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row an API list answers, following its pages."""
    url, rows = f"/api/v1/{path}/", []
    while url:
        response = client.get(url, params if url.startswith("/api/") else None)
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        url = body["next"]
    return rows


def api_count(client: Any, path: str, **params: Any) -> int:
    """How many rows an API list answers."""
    return len(api_rows(client, path, **params))


def figure(page: Page, name: str) -> int:
    return int(page.locator(f'[data-figure="{name}"]').inner_text())


def build_fleet() -> dict[str, Any]:
    acme = make_tenant("acme")
    admin = make_user(acme, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    north, south = make_group(acme, "north"), make_group(acme, "south")
    kind = make_type(acme, heartbeat=60)
    devices = [placed_device(acme, north if n % 2 else south, kind) for n in range(6)]
    now = timezone.now()
    Device.objects.filter(pk__in=[d.pk for d in devices[:3]]).update(last_seen_at=now, firmware_version="2.1.0")
    Device.objects.filter(pk=devices[3].pk).update(last_seen_at=now - timedelta(hours=2), firmware_version="2.0.0")
    do_block_devices([devices[5].pk], actor=admin)
    for device, severity, status in (
        (devices[0], "CRITICAL", "ACTIVE"),
        (devices[1], "MAJOR", "ACTIVE"),
        (devices[2], "MAJOR", "ACKNOWLEDGED"),
        (devices[3], "WARNING", "ACTIVE"),
        (devices[3], "MINOR", "CLEARED"),
    ):
        add_alarm(device, severity=severity, status=status)
    for n, device in enumerate(devices[:4]):
        add_measurements(device, [(now - timedelta(minutes=m), float(m)) for m in range(n + 2)])
    do_create_registration(external_id="WAITING-1", actor=admin)
    earlier = now - timedelta(minutes=1)
    Device.objects.filter(pk=devices[0].pk).update(latitude=48.14, longitude=11.58, located_at=earlier)
    Device.objects.filter(pk=devices[1].pk).update(latitude=59.33, longitude=18.07, located_at=earlier)
    Device.objects.filter(pk=devices[3].pk).update(
        name="<b>Pump</b> & co", latitude=41.4, longitude=2.17, located_at=now
    )
    other = placed_device(make_tenant("globex"))
    Device.objects.filter(pk=other.pk).update(latitude=40.7, longitude=-74.0, located_at=now)
    add_alarm(other, severity="CRITICAL")
    add_measurements(other, [(now, 1.0)])
    return {"acme": acme, "admin": admin, "north": north}


def assert_figures_match_the_api(page: Page, client: Any, *, administrator: bool) -> None:
    since = (timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)).isoformat()
    expected = {
        "devices": api_count(client, "devices"),
        "online": api_count(client, "devices", status="active", online="true"),
        "offline": api_count(client, "devices", status="active", online="false"),
        "status-active": api_count(client, "devices", status="active"),
        "status-blocked": api_count(client, "devices", status="blocked"),
        "firmware-2.1.0": api_count(client, "devices", status="active", firmware_version="2.1.0"),
        "measurements-24h": api_count(client, "measurements", since=since),
        "located": len([row for row in api_rows(client, "devices") if row["location"] is not None]),
    }
    for severity in ("critical", "major", "minor", "warning"):
        for status in ("active", "acknowledged"):
            expected[f"alarms-{severity}-{status}"] = api_count(
                client, "alarms", severity=severity.upper(), status=status.upper()
            )
    if administrator:
        expected["registrations-waiting"] = api_count(client, "registrations", status="pending")
    else:
        expect(page.locator('[data-figure="registrations-waiting"]')).to_have_count(0)
    shown = {name: figure(page, name) for name in expected}
    assert shown == expected
    assert expected["devices"] > 0 and expected["measurements-24h"] > 0


def test_the_figures_match_the_api_for_an_administrator_and_a_standard_user(
    browser: Browser, live_server: Any, tmp_path: Path
) -> None:
    fleet = build_fleet()
    standard = make_user(fleet["acme"], Role.Kind.STANDARD, email="standard@acme.test")
    grant(fleet["north"], [Action.VIEW], user=standard)

    page = signed_in_page(browser, live_server, fleet["admin"], width=1280, height=1000)
    elsewhere: list[str] = []
    page.on(
        "request", lambda request: None if request.url.startswith(live_server.url) else elsewhere.append(request.url)
    )
    page.goto("/cockpit/")
    assert_figures_match_the_api(page, api_client(fleet["admin"]), administrator=True)
    device_map = page.locator("[data-device-map]")
    expect(device_map).to_have_attribute("data-markers", str(figure(page, "located")))
    expect(device_map).to_have_attribute("data-outline-drawn", "true")  # the bundled outline, no tiles
    expect(device_map.locator(".leaflet-tile")).to_have_count(0)
    expect(page.locator("#panel-security-events")).to_be_visible()
    page.screenshot(path=str(screenshot_dir(tmp_path) / "cockpit-dashboard.png"), full_page=True)
    assert elsewhere == []  # nothing is loaded from the internet
    # The newest location is drawn first: the pump's. Its name is text in the popup, never markup.
    device_map.locator("path.leaflet-interactive").first.click()
    expect(page.locator(".leaflet-popup-content a")).to_have_text("<b>Pump</b> & co")

    major = figure(page, "alarms-major-active")
    page.locator('[data-figure="alarms-major-active"]').click()  # the figure leads to the alarms it counts
    expect(page.locator("#result_list tbody tr")).to_have_count(major)

    page = signed_in_page(browser, live_server, standard, width=1280, height=1000)
    page.goto("/cockpit/")
    assert_figures_match_the_api(page, api_client(standard), administrator=False)
    expect(page.locator("#panel-security-events")).to_have_count(0)


PANEL_REQUESTS = "() => performance.getEntriesByType('resource').filter(e => e.name.includes('/panels/')).length"
HIDE_TAB = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW_TAB = """() => {
  Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "visible"});
  Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_the_dashboard_follows_the_simulator_and_rests_in_a_background_tab(
    browser: Browser, live_server: Any, settings: Any
) -> None:
    settings.COCKPIT_DASHBOARD_CACHE_SECONDS = 0
    settings.COCKPIT_REFRESH_SECONDS = 1
    acme = make_tenant("acme")
    admin = make_user(acme, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    device, credential = make_device(acme)
    simulated = SimulatedDevice(external_id=device.external_id, credential=credential, device_id=device.pk)

    page = signed_in_page(browser, live_server, admin, width=1280, height=1000)
    page.goto("/cockpit/")
    values = page.locator('[data-figure="measurements-24h"]')
    expect(values).to_have_text("0")
    expect(page.locator('[data-figure="online"]')).to_have_text("0")

    sent = simulated.tick(live_server.url, time.time())["measurements"]

    expect(values).to_have_text(str(sent))  # without a reload: the page asked for fresh panels
    expect(page.locator('[data-figure="online"]')).to_have_text("1")
    expect(page.locator("#dashboard-updated time")).to_be_visible()

    page.evaluate(HIDE_TAB)
    dashboard = page.locator("#dashboard")
    expect(dashboard).to_have_attribute("data-skipped-while-hidden", "1")
    asked = page.evaluate(PANEL_REQUESTS)
    expect(dashboard).to_have_attribute("data-skipped-while-hidden", "3")  # two more polls, both held back
    assert page.evaluate(PANEL_REQUESTS) == asked

    sent += simulated.tick(live_server.url, time.time())["measurements"]
    page.evaluate(SHOW_TAB)
    expect(values).to_have_text(str(sent))


def test_the_device_page_follows_the_simulator_but_not_while_an_operation_is_typed(
    browser: Browser, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.COCKPIT_REFRESH_SECONDS = 1
    acme = make_tenant("acme")
    admin = make_user(acme, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    device, credential = make_device(acme)
    simulated = SimulatedDevice(external_id=device.external_id, credential=credential, device_id=device.pk)

    page = signed_in_page(browser, live_server, admin, width=1280, height=1000)
    page.goto(f"/cockpit/devices/device/{device.pk}/change/")
    expect(page.locator("#device-latest")).to_contain_text("No measurements yet")

    simulated.tick(live_server.url, time.time())
    expect(page.locator('[data-latest="c8y_Temperature/T"]')).to_contain_text(" C")  # no reload
    page.screenshot(path=str(screenshot_dir(tmp_path) / "cockpit-device.png"), full_page=True)

    live = page.locator("#device-live")
    page.fill("#operation-create input[name=kind]", "restart")
    expect(live).to_have_attribute("data-skipped-while-edited", "2")  # held back while the form is edited
    expect(page.locator("#operation-create input[name=kind]")).to_have_value("restart")
    page.click("#operation-create input[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("Operation “restart” queued.")


def test_the_device_list_updates_its_rows_in_place_and_keeps_a_selection(
    browser: Browser, live_server: Any, settings: Any
) -> None:
    settings.COCKPIT_REFRESH_SECONDS = 1
    acme = make_tenant("acme")
    admin = make_user(acme, Role.Kind.ADMINISTRATOR, email="admin@acme.test")
    device, credential = make_device(acme)
    make_device(acme)
    simulated = SimulatedDevice(external_id=device.external_id, credential=credential, device_id=device.pk)

    page = signed_in_page(browser, live_server, admin, width=1280, height=1000)
    page.goto("/cockpit/devices/device/")
    row = page.locator("#result_list tbody tr", has=page.locator(f"input.action-select[value='{device.pk}']"))
    expect(row.locator("td.field-online img")).to_have_attribute("alt", "False")

    simulated.tick(live_server.url, time.time())
    expect(row.locator("td.field-online img")).to_have_attribute("alt", "True")  # without a reload

    row.locator("input.action-select").check()
    expect(page.locator(".action-counter")).to_contain_text("1 of 2 selected")  # the admin's handlers still work
    live = page.locator("#device-list-live")
    expect(live).to_have_attribute("data-skipped-while-edited", "2")  # held back while rows are selected
    expect(row.locator("input.action-select")).to_be_checked()
