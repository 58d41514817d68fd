"""Odd input gets a 4xx with a clear JSON message, never a 5xx, and leaves nothing behind."""

from typing import Any

import pytest

from devices.models import DeviceGroup
from tenants.models import Role, User
from tests.factories import api_client, make_device, make_group

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def test_a_role_without_rights_is_created_with_none(acme_admin: Any) -> None:
    response = api_client(acme_admin).post("/api/v1/roles/", {"name": "Observers"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["rights"] == []


def test_deleting_a_group_that_still_holds_devices_is_a_409_naming_them(acme: Any, acme_admin: Any) -> None:
    group = make_group(acme)
    make_device(acme, group)
    make_device(acme, group)
    make_group(acme).__class__.objects.filter(pk=make_group(acme).pk).update(parent=group)
    response = api_client(acme_admin).delete(f"/api/v1/device-groups/{group.pk}/")
    assert response.status_code == 409
    detail = " ".join(response.json()["detail"])
    assert "2 device(s)" in detail and "1 subgroup(s)" in detail
    assert DeviceGroup.objects.filter(pk=group.pk).exists()


@pytest.mark.parametrize("url", ["/api/v1/alarms/", "/api/v1/measurements/", "/api/v1/events/", "/api/v1/audit/"])
@pytest.mark.parametrize(
    "value", ["2026-01-01T00:00:00+23:59", "2026-01-01T00:00:00-20:00", "0001-01-01T00:00:00+15:59", "yesterday", ""]
)
def test_date_time_filters_are_validated_in_one_place(acme_admin: Any, url: str, value: str) -> None:
    response = api_client(acme_admin).get(url, {"since": value, "until": value})
    if value.startswith("2026"):
        assert response.status_code == 200, response.content  # any valid offset, compared in UTC
    else:
        assert response.status_code == 400
        assert set(response.json()) == {"since", "until"}


def test_a_date_time_needs_its_time_zone(acme_admin: Any) -> None:
    response = api_client(acme_admin).get("/api/v1/audit/", {"since": "2026-01-01T00:00:00"})
    assert response.status_code == 400
    assert "time zone" in response.json()["since"][0]


@pytest.mark.parametrize("value", ["25097615400", "yes", "2", ""])
def test_boolean_filters_take_true_or_false_only(acme_admin: Any, value: str) -> None:
    response = api_client(acme_admin).get("/api/v1/users/", {"is_active": value})
    assert response.status_code == 400
    assert "is_active" in response.json()
    assert api_client(acme_admin).get("/api/v1/users/", {"is_active": "TRUE"}).status_code == 200


@pytest.mark.parametrize(
    ("url", "payload", "field"),
    [
        ("/api/v1/device-groups/", {"name": -45378}, "name"),
        ("/api/v1/device-groups/", {"name": ["a"]}, "name"),
        ("/api/v1/device-groups/", {"name": "tab\there"}, "name"),
        ("/api/v1/device-groups/", {"name": "bell\x07"}, "name"),
        ("/api/v1/device-groups/", {"name": "ok", "description": "esc\x1b[31m"}, "description"),
        ("/api/v1/roles/", {"name": "r", "rights": "view"}, "rights"),
        (
            "/api/v1/device-types/",
            {"manufacturer": "m", "model": "x", "heartbeat_interval": "60"},
            "heartbeat_interval",
        ),
        ("/api/v1/device-types/", {"manufacturer": "m", "model": "y", "certified": "yes"}, "certified"),
        (
            "/api/v1/device-types/",
            {"manufacturer": "m", "model": "z", "heartbeat_interval": True},
            "heartbeat_interval",
        ),
    ],
)
def test_values_of_the_wrong_json_type_or_with_control_characters_are_refused(
    acme_admin: Any, url: str, payload: dict[str, Any], field: str
) -> None:
    response = api_client(acme_admin).post(url, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_multi_line_text_keeps_its_line_breaks(acme_admin: Any) -> None:
    payload = {"name": "Plant", "description": "Line one\nLine two\twith a tab"}
    response = api_client(acme_admin).post("/api/v1/device-groups/", payload, format="json")
    assert response.status_code == 201, response.content
    assert DeviceGroup.objects.get(name="Plant").description == payload["description"]


def test_a_user_role_must_be_given_as_a_number(acme: Any, acme_admin: Any) -> None:
    role = Role.objects.get(tenant=acme, kind=Role.Kind.STANDARD)
    response = api_client(acme_admin).post(
        "/api/v1/users/", {"email": "typed@acme.test", "role": str(role.pk)}, format="json"
    )
    assert response.status_code == 400 and "role" in response.json()
    assert not User.objects.filter(email="typed@acme.test").exists()


def test_heartbeat_intervals_are_bounded_and_the_online_filter_survives_any_stored_one(
    acme: Any, acme_admin: Any
) -> None:
    from devices.models import Device, DeviceType

    client = api_client(acme_admin)
    for interval in (0, 2147483647):
        payload = {"manufacturer": "m", "model": f"x{interval}", "heartbeat_interval": interval}
        assert client.post("/api/v1/device-types/", payload, format="json").status_code == 400
    legacy = DeviceType.objects.create(tenant=acme, manufacturer="old", model="huge", heartbeat_interval=2147483647)
    device, _ = make_device(acme)
    Device.objects.filter(pk=device.pk).update(type=legacy)
    response = client.get("/api/v1/devices/", {"online": "true"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("alarms", {"type": "a", "severity": {}}),
        ("alarms", {"type": "a", "severity": []}),
        ("operations/1", {"status": {}}),
        ("operations/1", {"status": ["SUCCESSFUL"]}),
    ],
)
def test_unhashable_device_values_are_a_400(acme: Any, path: str, payload: dict[str, Any]) -> None:
    from tests.factories import device_client

    _, credential = make_device(acme)
    response = device_client(credential).post(f"/api/device/v1/{path}", payload, format="json")
    assert response.status_code == 400, response.content


@pytest.mark.parametrize("attributes", ["abc", 5, [1, 2], {"a": "x\u0000y"}, {"k": "v" * 5000}])
def test_device_attributes_are_an_object_that_can_be_stored(acme: Any, acme_admin: Any, attributes: Any) -> None:
    device, _ = make_device(acme)
    response = api_client(acme_admin).patch(f"/api/v1/devices/{device.pk}/", {"attributes": attributes}, format="json")
    assert response.status_code == 400, response.content
    assert "attributes" in response.json()


def test_direction_overrides_are_refused_in_names(acme_admin: Any) -> None:
    response = api_client(acme_admin).post("/api/v1/device-groups/", {"name": "evil\u202egnp.exe"}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_the_cockpit_refuses_control_characters_too(acme: Any, acme_admin: Any) -> None:
    from tests.support.cockpit import admin_url, cockpit_client

    client = cockpit_client(acme_admin)
    response = client.post(admin_url(DeviceGroup, "add"), {"name": "evil\x1b[31mname", "description": ""})
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert not DeviceGroup.objects.filter(tenant=acme).exists()


def test_a_plus_written_raw_in_a_date_time_gets_a_hint(acme_admin: Any) -> None:
    response = api_client(acme_admin).get("/api/v1/audit/?since=2026-01-01T00:00:00+02:00")
    assert response.status_code == 400
    assert "%2B" in response.json()["since"][0]


def test_csv_errors_name_the_field_the_csv_came_in(acme_admin: Any) -> None:
    response = api_client(acme_admin).post("/api/v1/registrations/csv/", {"csv": "name\nx\n"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"csv"}
