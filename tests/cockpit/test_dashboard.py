"""The cockpit's home page: the fleet's figures for the caller's reach, and nobody else's (issue 13)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices import selectors
from devices.models import Device, DeviceRegistration
from devices.services.registration import do_create_registration
from devices.services.registry import do_block_devices
from tenants.models import Action, Role
from tenants.services import do_create_role, do_create_support_grant, do_revoke_support_grant, do_update_tenant_policy
from tests.factories import grant, make_group, make_tenant, make_user, verified_client
from tests.support.device_rows import add_alarm, add_measurements, make_type, placed_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

DASHBOARD = "/cockpit/"
PANELS = "/cockpit/dashboard/panels/"


@pytest.fixture(autouse=True)
def _fresh_figures(settings: Any) -> None:
    settings.COCKPIT_DASHBOARD_CACHE_SECONDS = 0


def panels_of(response: Any) -> dict[str, dict[str, Any]]:
    """``{panel key: its context}`` of a rendered dashboard (or its refresh), lazy panels asked for as the page does."""
    assert response.status_code == 200, response.status_code
    panels = {}
    for rendered in response.context["panels"]:
        if rendered.context is not None:
            panels[rendered.panel.key] = rendered.context
            continue
        lazy = response.client.get(reverse("cockpit:dashboard_panel", args=[rendered.panel.key]))
        assert lazy.status_code == 200
        if lazy.content:
            panels[rendered.panel.key] = lazy.context["rendered"].context
    return panels


def seen(device: Device, minutes_ago: float) -> None:
    Device.objects.filter(pk=device.pk).update(last_seen_at=timezone.now() - timedelta(minutes=minutes_ago))


@pytest.fixture
def fleet() -> dict[str, Any]:
    """Two groups of acme with devices in every state, alarms and values; globex has more of everything."""
    acme = make_tenant("acme")
    admin = make_user(acme, Role.Kind.ADMINISTRATOR)
    north, south = make_group(acme, "north"), make_group(acme, "south")
    kind = make_type(acme, heartbeat=60)
    n1, n2, n3 = (placed_device(acme, north, kind) for _ in range(3))
    s1, s2 = (placed_device(acme, south, kind) for _ in range(2))
    seen(n1, 1)  # online
    seen(n2, 30)  # offline: silent for 30 minutes with a one-minute interval
    seen(s1, 1)
    do_block_devices([s2.pk], actor=admin)
    Device.objects.filter(pk=n1.pk).update(firmware_version="1.0")
    Device.objects.filter(pk__in=[n2.pk, s1.pk]).update(firmware_version="2.0")
    add_alarm(n1, severity="MAJOR")
    add_alarm(n2, severity="MAJOR", status="ACKNOWLEDGED")
    add_alarm(s1, severity="CRITICAL")
    add_alarm(s1, severity="MINOR", status="CLEARED")
    now = timezone.now()
    add_measurements(n1, [(now - timedelta(minutes=m), 20.0) for m in range(5)])
    add_measurements(s1, [(now - timedelta(minutes=m), 21.0) for m in range(3)])
    add_measurements(s1, [(now - timedelta(hours=30), 19.0)])  # older than a day
    do_create_registration(external_id="WAITING-1", actor=admin)
    Device.objects.filter(pk=n1.pk).update(latitude=48.1, longitude=11.6, located_at=now - timedelta(hours=1))
    Device.objects.filter(pk=s1.pk).update(latitude=53.5, longitude=10.0, located_at=now)

    globex = make_tenant("globex")
    for _ in range(4):
        other = placed_device(globex)
        seen(other, 1)
        add_alarm(other, severity="CRITICAL")
        add_measurements(other, [(now, 1.0)])
        Device.objects.filter(pk=other.pk).update(latitude=40.7, longitude=-74.0, located_at=now)
    do_create_registration(external_id="WAITING-2", tenant=globex, actor=None)
    return {"acme": acme, "admin": admin, "north": north, "south": south, "devices": (n1, n2, n3, s1, s2)}


def test_an_administrator_sees_the_whole_tenant_and_nothing_else(fleet: dict[str, Any]) -> None:
    panels = panels_of(verified_client(fleet["admin"]).get(DASHBOARD))

    devices = panels["fleet"]
    assert devices["total"] == 5
    assert {row["label"]: row["devices"] for row in devices["statuses"]} == {
        "Pending": 0,
        "Active": 4,
        "Blocked": 1,
        "Decommissioned": 0,
    }
    assert (devices["online"], devices["offline"], devices["never_seen"]) == (2, 2, 1)
    alarms = {row["severity"]: (row["active"], row["acknowledged"]) for row in panels["alarms"]["rows"]}
    assert alarms == {"CRITICAL": (1, 0), "MAJOR": (1, 1), "MINOR": (0, 0), "WARNING": (0, 0)}
    assert panels["alarms"]["open"] == 3
    n1, n2, n3, s1, _s2 = fleet["devices"]
    assert [row["pk"] for row in panels["silent"]["devices"]] == [n2.pk, n3.pk]  # the never-seen one last
    assert {row["firmware_version"]: row["devices"] for row in panels["firmware-versions"]["versions"]} == {
        "2.0": 2,
        "1.0": 1,
        "": 1,
    }
    assert panels["registrations"]["waiting"] == 1
    assert panels["ingest"]["total"] == 8 and len(panels["ingest"]["hours"]) == 24
    assert panels["ingest"]["hours"][-1]["values"] + panels["ingest"]["hours"][-2]["values"] == 8
    assert [point["pk"] for point in panels["map"]["points"]] == [s1.pk, n1.pk]  # the newest location first
    assert panels["map"]["located"] == 2 and panels["map"]["points"][0]["online"] is True
    assert "security-events" in panels and "support-grants" in panels and "rollouts" in panels


def test_a_standard_user_sees_the_groups_granted_to_them(fleet: dict[str, Any]) -> None:
    user = make_user(fleet["acme"], Role.Kind.STANDARD)
    grant(fleet["north"], [Action.VIEW], user=user)

    panels = panels_of(verified_client(user).get(DASHBOARD))

    assert panels["fleet"]["total"] == 3
    assert (panels["fleet"]["online"], panels["fleet"]["offline"]) == (1, 2)
    alarms = {row["severity"]: (row["active"], row["acknowledged"]) for row in panels["alarms"]["rows"]}
    assert alarms["CRITICAL"] == (0, 0) and alarms["MAJOR"] == (1, 1)
    assert panels["ingest"]["total"] == 5
    assert panels["map"]["located"] == 1
    assert [point["pk"] for point in panels["map"]["points"]] == [fleet["devices"][0].pk]
    # Registrations, the audit trail and support grants are the administrators' business.
    assert not {"registrations", "security-events", "support-grants"} & set(panels)


def test_a_user_without_rights_sees_empty_panels_and_whom_to_ask(fleet: dict[str, Any]) -> None:
    user = make_user(fleet["acme"], Role.Kind.BUSINESS)

    response = verified_client(user).get(DASHBOARD)

    panels = panels_of(response)
    assert panels["fleet"]["total"] == 0 and panels["alarms"]["open"] == 0 and panels["ingest"]["total"] == 0
    assert panels["silent"]["devices"] == [] and panels["firmware-versions"]["versions"] == []
    assert "Ask an administrator of Acme for rights on a device group" in response.content.decode()


def test_a_support_engineer_sees_the_granting_tenant_only(fleet: dict[str, Any]) -> None:
    provider = make_tenant("provider", provider=True)
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(duration_hours=2, actor=fleet["admin"], reason="T-13", scope="read")
    client = verified_client(engineer)
    assert client.post("/support/enter/", {"secret": link}).status_code == 302

    panels = panels_of(client.get(DASHBOARD))

    assert panels["fleet"]["total"] == 5 and panels["alarms"]["open"] == 3
    assert "support-grants" not in panels  # the grants are the tenant's; the banner shows the engineer theirs


def test_the_refresh_answers_the_same_panels(fleet: dict[str, Any]) -> None:
    client = verified_client(fleet["admin"])

    whole, fragment = panels_of(client.get(DASHBOARD)), panels_of(client.get(PANELS, headers={"HX-Request": "true"}))

    assert fragment["fleet"] == whole["fleet"] and fragment["alarms"] == whole["alarms"]


@pytest.mark.parametrize("url", [DASHBOARD, PANELS])
def test_anonymous_callers_are_sent_to_the_login(url: str) -> None:
    response = Client().get(url)

    assert response.status_code == 302 and response["Location"].startswith(reverse("cockpit:login"))


def test_a_refresh_after_the_session_ended_reloads_the_page(fleet: dict[str, Any]) -> None:
    client = verified_client(fleet["admin"])
    client.post(reverse("cockpit:logout"))

    response = client.get(PANELS, headers={"HX-Request": "true"})

    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert b"panel-fleet" not in response.content


def test_figures_are_cached_per_caller_and_a_change_of_rights_reads_afresh(
    fleet: dict[str, Any], settings: Any
) -> None:
    settings.COCKPIT_DASHBOARD_CACHE_SECONDS = 60
    user = make_user(fleet["acme"], Role.Kind.STANDARD)
    grant(fleet["north"], [Action.VIEW], user=user)
    client = verified_client(user)
    assert panels_of(client.get(DASHBOARD))["fleet"]["total"] == 3

    placed_device(fleet["acme"], fleet["north"])
    assert panels_of(client.get(DASHBOARD))["fleet"]["total"] == 3  # cached
    assert panels_of(verified_client(fleet["admin"]).get(DASHBOARD))["fleet"]["total"] == 6  # not another's

    grant(fleet["south"], [Action.VIEW], user=user)
    assert panels_of(client.get(DASHBOARD))["fleet"]["total"] == 6  # more rights: read afresh


def test_the_number_of_queries_does_not_grow_with_the_fleet(fleet: dict[str, Any]) -> None:
    client = verified_client(fleet["admin"])
    client.get(DASHBOARD)

    def queries() -> int:
        with (
            CaptureQueriesContext(connections["default"]) as default,
            CaptureQueriesContext(connections["telemetry"]) as telemetry,
        ):
            assert client.get(DASHBOARD).status_code == 200
            for key in ("silent", "firmware-versions", "ingest", "map"):
                assert client.get(reverse("cockpit:dashboard_panel", args=[key])).status_code == 200
        return len(default) + len(telemetry)

    before = queries()
    for _ in range(5):
        device = placed_device(fleet["acme"], fleet["north"])
        add_alarm(device, severity="WARNING")
        add_measurements(device, [(timezone.now(), 1.0)])
    assert queries() == before


def test_online_and_offline_figures_follow_the_device_list_filter(fleet: dict[str, Any]) -> None:
    counts = selectors.fleet_counts(fleet["admin"])
    active = Device.objects.restrict(fleet["admin"], Action.VIEW).filter(status=Device.Status.ACTIVE)

    assert counts["online"] == selectors.filter_online(active, True).count()
    assert counts["offline"] == selectors.filter_online(active, False).count()


def test_an_empty_tenant_is_told_how_to_register_a_device() -> None:
    admin = make_user(make_tenant("empty"), Role.Kind.ADMINISTRATOR)

    response = verified_client(admin).get(DASHBOARD)

    assert panels_of(response)["fleet"]["total"] == 0
    assert reverse("cockpit:devices_deviceregistration_add").encode() in response.content
    assert DeviceRegistration.objects.count() == 0


def test_a_role_that_may_not_view_devices_gets_no_device_panels(fleet: dict[str, Any]) -> None:
    blind = do_create_role(name="Badge readers", rights=[], actor=None, tenant=fleet["acme"])

    response = verified_client(make_user(fleet["acme"], blind)).get(DASHBOARD)

    panels = panels_of(response)
    assert not {"fleet", "alarms", "silent", "firmware-versions", "ingest", "map", "registrations"} & set(panels)
    assert b"/cockpit/devices/alarm/" not in response.content


def test_administrators_see_open_support_grants_with_the_time_left(fleet: dict[str, Any]) -> None:
    do_create_support_grant(duration_hours=3, actor=fleet["admin"], reason="T-1 open", scope="read")
    revoked, _ = do_create_support_grant(duration_hours=3, actor=fleet["admin"], reason="T-2 revoked", scope="read")
    do_revoke_support_grant(revoked, actor=fleet["admin"])

    response = verified_client(fleet["admin"]).get(DASHBOARD)

    grants = panels_of(response)["support-grants"]["grants"]
    assert [grant["reason"] for grant in grants] == ["T-1 open"]
    assert grants[0]["engineer"] == "" and grants[0]["expires_at"] > timezone.now() + timedelta(hours=2)
    assert "link not opened yet" in response.content.decode()


def test_a_lazy_panel_is_asked_for_after_the_page_and_not_for_another_reach(fleet: dict[str, Any]) -> None:
    client = verified_client(fleet["admin"])
    page = client.get(DASHBOARD)
    unread = [rendered.panel.key for rendered in page.context["panels"] if rendered.context is None]
    assert unread == ["silent", "firmware-versions", "ingest", "map"]
    assert reverse("cockpit:dashboard_panel", args=["ingest"]).encode() in page.content

    blind = do_create_role(name="Badge readers", rights=[], actor=None, tenant=fleet["acme"])
    nobody = verified_client(make_user(fleet["acme"], blind))
    answer = nobody.get(reverse("cockpit:dashboard_panel", args=["ingest"]))
    assert answer.status_code == 200 and answer.content == b""  # the section disappears
    assert nobody.get(reverse("cockpit:dashboard_panel", args=["no-such-panel"])).content == b""
    assert Client().get(reverse("cockpit:dashboard_panel", args=["ingest"])).status_code == 302


def test_the_refresh_keeps_the_map_as_drawn(fleet: dict[str, Any], settings: Any) -> None:
    settings.COCKPIT_DASHBOARD_CACHE_SECONDS = 60
    client = verified_client(fleet["admin"])
    panels_of(client.get(DASHBOARD))  # every panel read, and cached

    refresh = client.get(PANELS, headers={"HX-Request": "true"}).content.decode()

    assert '<section id="panel-map" hx-preserve="true"></section>' in refresh
    assert "device-map-points" not in refresh and 'data-figure="measurements-24h"' in refresh


def test_a_device_pages_live_part_is_answered_like_the_page(fleet: dict[str, Any]) -> None:
    n1 = fleet["devices"][0]
    live = reverse("cockpit:devices_device_live", args=[n1.pk])
    add_measurements(n1, [(timezone.now(), 23.5)])

    answer = verified_client(fleet["admin"]).get(live, headers={"HX-Request": "true"})
    assert answer.status_code == 200 and 'data-latest="c8y_Temperature/T">23.5 C' in answer.content.decode()

    south_only = make_user(fleet["acme"], Role.Kind.STANDARD)
    grant(fleet["south"], [Action.VIEW], user=south_only)
    globex_admin = make_user(make_tenant("initech"), Role.Kind.ADMINISTRATOR)
    missing = reverse("cockpit:devices_device_live", args=[10**9])
    for stranger in (south_only, globex_admin):
        client = verified_client(stranger)
        assert client.get(live).status_code == 404  # the same answer as for a device that does not exist
        assert client.get(missing).status_code == 404
    assert Client().get(live, headers={"HX-Request": "true"})["HX-Refresh"] == "true"
