"""Device payloads that would break a page or the COPY text later get a 400 now, and store nothing."""

import json
from typing import Any

import pytest
from django.utils import timezone

from devices.models import Alarm, Device, Event, Measurement, OperationResult
from devices.services.registry import do_create_operation
from tests.factories import api_client, device_client, make_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def post(client: Any, path: str, payload: Any) -> Any:
    return client.post(f"/api/device/v1/{path}", json.dumps(payload), content_type="application/json")


def measurement(**changes: Any) -> dict[str, Any]:
    return {"time": timezone.now().isoformat(), "type": "c8y_T", "series": "T", "value": 21.5, "unit": "C"} | changes


BAD_TEXT = [
    ("type", "c8y_T\n"),  # `^…$` with match() let a trailing newline through
    ("series", "T\n"),
    ("type", "c8y_T\x00"),
    ("unit", "C\n"),
    ("unit", "C\r"),
    ("unit", "\tC"),
    ("unit", "C\x00"),
    ("unit", "C\\N"),  # a backslash escapes in COPY text
    ("unit", "\x1b[31mC"),
    ("unit", "C\x85"),  # a C1 control character (NEL)
]


@pytest.mark.parametrize(("field", "text"), BAD_TEXT)
def test_control_characters_in_names_and_units_are_refused(acme, field, text):
    _, credential = make_device(acme)
    response = post(device_client(credential), "measurements", measurement(**{field: text}))
    assert response.status_code == 400
    message = response.json()["items"]["0"][field]
    assert ("control characters" in message) if field == "unit" else message == "1 to 64 letters, digits or . _ : -"
    assert Measurement.objects.count() == 0


@pytest.mark.parametrize(("field", "text"), BAD_TEXT)
def test_a_batch_with_one_bad_name_or_unit_stores_nothing(acme, field, text):
    # Several items go through COPY, where a newline or tab would shift the columns.
    _, credential = make_device(acme)
    batch = [measurement(value=float(i)) for i in range(4)]
    batch[2][field] = text
    response = post(device_client(credential), "measurements", batch)
    assert response.status_code == 400
    assert list(response.json()["items"]) == ["2"]
    assert list(response.json()["items"]["2"]) == [field]
    assert Measurement.objects.count() == 0


def test_units_beyond_ascii_still_go_through_copy(acme):
    device, credential = make_device(acme)
    batch = [measurement(unit="°C"), measurement(unit="µg/m³"), measurement(unit="")]
    assert post(device_client(credential), "measurements", batch).json() == {"stored": 3}
    assert set(Measurement.objects.filter(device_id=device.pk).values_list("unit", flat=True)) == {"", "µg/m³", "°C"}


@pytest.mark.parametrize("value", [10**15 + 1, -(10**15) - 1, 1.0000000000000002e15, 1e16, 1.7e308, -1.7e308, 10**300])
def test_values_beyond_the_bound_are_refused(acme, value):
    _, credential = make_device(acme)
    response = post(device_client(credential), "measurements", [measurement(), measurement(value=value)])
    assert response.status_code == 400
    assert response.json()["items"] == {"1": {"value": "A number between -1e15 and 1e15 (10^15)."}}
    assert Measurement.objects.count() == 0


def test_values_up_to_the_bound_are_stored_exactly(acme):
    device, credential = make_device(acme)
    values = [10**15, -(10**15), 1e15 - 0.125, 999_999_999_999_999]
    response = post(device_client(credential), "measurements", [measurement(value=v) for v in values])
    assert response.json() == {"stored": 4}
    stored = Measurement.objects.filter(device_id=device.pk).values_list("value", flat=True)
    assert sorted(stored) == sorted(values)


def test_nul_and_deep_nesting_in_events_and_alarms_are_refused(acme):
    _, credential = make_device(acme)
    client = device_client(credential)
    # As deep as the JSON parser takes, deeper than Python's recursion limit: a 400, no RecursionError.
    deep = '{"type": "door", "attributes": {"k": ' + "[" * 1000 + "]" * 1000 + "}}"
    for path, body, field in [
        ("events", json.dumps({"type": "door", "text": "a\x00b"}), "text"),
        ("events", json.dumps({"type": "door", "attributes": {"k": "a\x00"}}), "attributes"),
        ("events", json.dumps({"type": "door", "attributes": {"k\x00": 1}}), "attributes"),
        ("events", json.dumps({"type": "door", "attributes": {"k": [{"x": ["\x00"]}]}}), "attributes"),
        ("events", deep, "attributes"),
        ("alarms", json.dumps({"type": "hot", "severity": "MAJOR", "text": "\x00"}), "text"),
    ]:
        response = client.post(f"/api/device/v1/{path}", body, content_type="application/json")
        assert response.status_code == 400, (path, body)
        assert field in response.json()["items"]["0"]
    assert (Event.objects.count(), Alarm.objects.count()) == (0, 0)
    ok = {"type": "door", "text": "line one\nline two\ttab", "attributes": {"k": [[["fine"]]]}}
    assert post(client, "events", ok).status_code == 201


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00"])
def test_timestamps_before_1970_are_refused(acme, moment):
    # Year 1 at +14:00 is 1 BC in UTC: PostgreSQL stores it, Python cannot read it back.
    _, credential = make_device(acme)
    client = device_client(credential)
    for path, body in [
        ("measurements", measurement(time=moment)),
        ("events", {"type": "door", "time": moment}),
        ("alarms", {"type": "hot", "severity": "MAJOR", "time": moment}),
        ("location", {"latitude": 1.0, "longitude": 2.0, "time": moment}),
    ]:
        response = post(client, path, body)
        assert response.status_code == 400, path
        assert "1970" in json.dumps(response.json())
    assert (Measurement.objects.count(), Event.objects.count(), Alarm.objects.count()) == (0, 0, 0)
    assert post(client, "events", {"type": "door", "time": "1970-01-01T00:00:00Z"}).status_code == 201


def test_firmware_versions_operation_messages_and_registration_ids_are_checked(acme, acme_admin):
    device, credential = make_device(acme)
    client = device_client(credential)
    for version in ("1.2\n", "1.2\x00", "\x1b[2J"):
        response = post(client, "heartbeat", {"firmware_version": version})
        assert response.status_code == 400
        assert "control characters" in response.json()["firmware_version"]
    assert post(client, "heartbeat", {"firmware_version": "1.2.3-rc1+β"}).status_code == 200
    operation = do_create_operation(device, kind="restart", parameters={}, actor=acme_admin)
    response = post(client, f"operations/{operation.pk}", {"status": "FAILED", "message": "disk\x00full"})
    assert response.status_code == 400
    assert "NUL" in response.json()["message"]
    assert not OperationResult.objects.exists()
    device.refresh_from_db()
    assert device.firmware_version == "1.2.3-rc1+β"
    for body in (
        {"tenant": "acme", "external_id": "SN\x00", "registration_token": "x"},
        {"tenant": "ac\x00me", "external_id": "SN", "registration_token": "x"},
    ):
        response = api_client().post("/api/device/v1/register", body, format="json")
        assert response.status_code == 400
        assert "NUL" in response.json()["detail"]
    assert Device.objects.count() == 1
