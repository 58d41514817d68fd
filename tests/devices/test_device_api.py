"""The device API: registration, credentials bound to one device, all-or-nothing payloads."""

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote, unquote

import pytest
import time_machine
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEntry
from cot.database.scope import statement_of
from devices.device_api.auth import certificate_sha256
from devices.models import Alarm, Device, DeviceRegistration, Event, Measurement, Operation, OperationResult
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_operation, do_decommission_devices, do_rotate_device_credential
from tenants.models import Tenant
from tests.factories import api_client, device_client, make_device, make_token

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

REGISTER = "/api/device/v1/register"


def post(client, path, payload):
    return client.post(f"/api/device/v1/{path}", json.dumps(payload), content_type="application/json")


def test_registration_flow_pending_then_credential_exactly_once(acme, acme_admin):
    do_create_registration(external_id="IMEI-1", registration_token="s3cret-label-token", actor=acme_admin)
    anonymous = api_client()
    body = {"tenant": "acme", "external_id": "IMEI-1", "registration_token": "s3cret-label-token"}
    assert anonymous.post(REGISTER, body, format="json").status_code == 202
    registration = DeviceRegistration.objects.get(external_id="IMEI-1")
    response = api_client(acme_admin).post(f"/api/v1/registrations/{registration.pk}/accept/")
    assert response.status_code == 200, response.content
    first = anonymous.post(REGISTER, body, format="json")
    assert first.status_code == 201
    credential = first.json()["credential"]
    assert credential.startswith("cot_dev_")
    assert anonymous.post(REGISTER, body, format="json").status_code == 404  # never again
    device = Device.objects.get(pk=first.json()["device_id"])
    assert credential not in (device.credential_digest, device.credential_prefix)
    assert post(device_client(credential), "heartbeat", {}).status_code == 200
    assert AuditEntry.objects.filter(event="device.credential_issue", tenant=acme).exists()


def _register(external_id: str, token: str | None, address: str = "192.0.2.10") -> Any:
    body = {"tenant": "acme", "external_id": external_id}
    if token is not None:
        body["registration_token"] = token
    return api_client().post(REGISTER, body, format="json", REMOTE_ADDR=address)


def test_unknown_ids_missing_and_wrong_tokens_get_the_same_answer(acme, acme_admin):
    do_create_registration(external_id="MAC-1", registration_token="right-label-token", actor=acme_admin)
    answers = [
        _register("nope", "x", "192.0.2.1"),
        _register("MAC-1", "x", "192.0.2.2"),
        _register("MAC-1", None, "192.0.2.3"),  # serials are printed on labels: the id alone proves nothing
        _register("MAC-1", "", "192.0.2.4"),
    ]
    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.content for answer in answers}) == 1
    assert _register("MAC-1", "right-label-token").status_code == 202


def test_wrong_tokens_are_throttled_per_address_and_never_block(acme, acme_admin):
    do_create_registration(external_id="MAC-2", registration_token="right-label-token", actor=acme_admin)
    for _ in range(5):
        assert _register("MAC-2", "guess", "198.51.100.7").status_code == 404
    throttled = _register("MAC-2", "right-label-token", "198.51.100.7")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    # The same answer for an id nobody expects: the throttle reveals nothing.
    assert _register("UNKNOWN-9", "guess", "198.51.100.7").status_code == 429
    # The rightful device, elsewhere, is not locked out; nothing was blocked.
    assert _register("MAC-2", "right-label-token", "203.0.113.5").status_code == 202
    registration = DeviceRegistration.objects.get(external_id="MAC-2")
    assert registration.status == "pending" and registration.failed_attempts == 5
    assert AuditEntry.objects.filter(event="registration.wrong_token", tenant=acme).count() == 5


def test_guessing_from_many_addresses_never_keeps_the_rightful_device_out(acme, acme_admin):
    do_create_registration(external_id="MAC-3", registration_token="right-label-token", actor=acme_admin)
    with time_machine.travel(timezone.now(), tick=False):
        for n in range(10):
            assert _register("MAC-3", f"guess-{n}", f"198.51.100.{n + 1}").status_code == 404
        # The id's budget is spent: an address that guessed it is refused before comparing ...
        assert _register("MAC-3", "guess-again", "198.51.100.1").status_code == 429
        # ... a new address gets one guess, then the same ...
        assert _register("MAC-3", "guess-new", "198.51.100.99").status_code == 404
        assert _register("MAC-3", "guess-new-2", "198.51.100.99").status_code == 429
        # ... and the rightful device, which never sent a wrong token, gets in at once.
        assert _register("MAC-3", "right-label-token", "203.0.113.9").status_code == 202
    assert AuditEntry.objects.filter(event="registration.throttled", tenant=acme).count() == 1
    assert DeviceRegistration.objects.get(external_id="MAC-3").status == "pending"


def test_auto_accept_policy_issues_on_first_call(acme, acme_admin):
    Tenant.objects.filter(pk=acme.pk).update(auto_accept_registrations=True)
    issued = do_create_registration(external_id="AUTO-1", actor=acme_admin)
    assert issued.generated and issued.token.startswith("cot_reg_")
    assert _register("AUTO-1", issued.token).status_code == 201


def test_device_credential_cannot_read_the_user_api(acme):
    _, credential = make_device(acme)
    client = device_client(credential)
    for url in ("/api/v1/me/", "/api/v1/device-groups/", "/api/v1/users/", "/api/v1/audit/"):
        assert client.get(url).status_code == 401, url


def test_user_tokens_and_sessions_are_refused_on_the_device_api(acme, acme_admin):
    user_client = api_client()
    user_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(acme_admin)}")
    assert post(user_client, "measurements", {"type": "t", "series": "s", "value": 1}).status_code == 401
    from tests.factories import verified_client

    session = verified_client(acme_admin)
    assert session.post("/api/device/v1/heartbeat", "{}", content_type="application/json").status_code == 401


def test_device_a_cannot_write_data_attributed_to_device_b(acme):
    device_a, credential_a = make_device(acme)
    device_b, _ = make_device(acme)
    response = post(
        device_client(credential_a),
        "measurements",
        {"type": "T", "series": "t", "value": 1.5, "device_id": device_b.pk},
    )
    assert response.status_code == 400  # unknown field: the device comes from the credential only
    assert (
        post(device_client(credential_a), "measurements", {"type": "T", "series": "t", "value": 1.5}).status_code == 201
    )
    assert set(Measurement.objects.values_list("device_id", flat=True)) == {device_a.pk}


def test_revoked_rotated_away_and_malformed_credentials_get_401(acme):
    device, credential = make_device(acme)
    new_credential = do_rotate_device_credential(device, actor=None)
    assert post(device_client(credential), "heartbeat", {}).status_code == 401
    assert post(device_client(new_credential), "heartbeat", {}).status_code == 200
    rotated_by_device = post(device_client(new_credential), "credential/rotate", {}).json()["credential"]
    assert post(device_client(new_credential), "heartbeat", {}).status_code == 401
    assert post(device_client(rotated_by_device), "heartbeat", {}).status_code == 200
    for bad in ("cot_dev_", "cot_dev_garbage", "garbage", rotated_by_device + "x"):
        assert post(device_client(bad), "heartbeat", {}).status_code == 401
    assert api_client().post("/api/device/v1/heartbeat", {}, format="json").status_code == 401
    do_decommission_devices([device.pk], actor=None)
    assert post(device_client(rotated_by_device), "heartbeat", {}).status_code == 401


def test_a_bad_credential_costs_one_lookup_at_most(acme):
    make_device(acme)
    measurement = {"type": "c8y_T", "series": "T", "value": 1.0}

    def statements(credential: str) -> tuple[int, list[str], list[str]]:
        with (
            CaptureQueriesContext(connections["default"]) as default,
            CaptureQueriesContext(connections["telemetry"]) as telemetry,
        ):
            status = post(device_client(credential), "measurements", measurement).status_code
        # A connection's first use also prepares the statement; that is setup, not a lookup.
        run = [statement_of(q["sql"]) for q in default.captured_queries if not q["sql"].startswith("PREPARE")]
        return status, run, [statement_of(q["sql"]) for q in telemetry.captured_queries]

    status, lookups, payload = statements("cot_dev_" + "A" * 43)
    assert (status, len(lookups), payload) == (401, 1, [])
    assert lookups[0].startswith("EXECUTE cot_device_by_digest")
    assert statements("cot_pat_not-a-device-credential") == (401, [], [])


def test_batch_is_all_or_nothing_with_per_item_errors(acme):
    device, credential = make_device(acme)
    now = timezone.now()
    batch = [
        {"time": now.isoformat(), "type": "c8y_T", "series": "T", "value": 20.0 + i, "unit": "C"} for i in range(5)
    ]
    batch[3]["value"] = "hot"
    batch[4]["time"] = (now + timedelta(days=1)).isoformat()
    response = post(device_client(credential), "measurements", batch)
    assert response.status_code == 400
    assert set(response.json()["items"]) == {"3", "4"}
    assert "value" in response.json()["items"]["3"]
    assert "future" in response.json()["items"]["4"]["time"]
    assert Measurement.objects.count() == 0
    batch[3]["value"], batch[4]["time"] = 1.0, now.isoformat()
    assert post(device_client(credential), "measurements", batch).json() == {"stored": 5}
    assert Measurement.objects.filter(device_id=device.pk, tenant_id=acme.pk).count() == 5


def test_a_batch_stores_every_value_as_sent(acme):
    """Units may hold quotes, commas, braces and spaces: the batch's array literals keep them apart."""
    device, credential = make_device(acme)
    now = timezone.now().replace(microsecond=123456)
    units = ['a"b', "m,s", "{x}", " ", "", "NULL"]
    batch = [
        {
            "time": (now - timedelta(seconds=i)).isoformat(),
            "type": f"t.{i}",
            "series": "S:1",
            "value": -1.5e14 + i,
            "unit": u,
        }
        for i, u in enumerate(units)
    ]
    assert post(device_client(credential), "measurements", batch).json() == {"stored": len(units)}
    stored = Measurement.objects.filter(device_id=device.pk).order_by("-time")
    assert [(m.time, m.type, m.series, m.value, m.unit) for m in stored] == [
        (now - timedelta(seconds=i), f"t.{i}", "S:1", -1.5e14 + i, u) for i, u in enumerate(units)
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ('{"type": "T", "series": "s", "value": NaN}', 400),
        ('{"type": "T", "series": "s", "value": true}', 400),
        ('{"type": "T", "series": "s", "value": 1, "extra": 1}', 400),
        ('{"type": "T", "series": "s", "value": 1, "time": "2020-01-01T00:00:00"}', 400),
        ("[]", 400),
        ('{"type": ["T"], "series": {"s": 1}, "value": 1}', 400),
        ('[{"type": "T", "series": "s", "value": 1}, {"type": "T", "series": "s", "value": 1, "time": [1]}]', 400),
        ("{nope", 400),
        ('"text"', 400),
    ],
)
def test_bad_payloads_get_a_clear_4xx_and_store_nothing(acme, body, status):
    _, credential = make_device(acme)
    response = device_client(credential).post("/api/device/v1/measurements", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["detail"] or response.json()["items"]
    assert Measurement.objects.count() == 0


def test_oversize_body_and_batch_are_413(acme, settings):
    _, credential = make_device(acme)
    settings.DEVICE_MAX_BATCH = 3
    items = [{"type": "T", "series": "s", "value": 1}] * 4
    assert post(device_client(credential), "measurements", items).status_code == 413
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert post(device_client(credential), "measurements", items[:2] * 2).status_code == 413


def test_events_alarms_location_and_repeat_alarm_counts_up(acme):
    device, credential = make_device(acme)
    client = device_client(credential)
    assert post(client, "events", {"type": "door_open", "text": "Door opened"}).status_code == 201
    first = post(client, "alarms", {"type": "overheat", "severity": "MAJOR", "text": "Too hot"}).json()["alarms"][0]
    second = post(client, "alarms", {"type": "overheat", "severity": "CRITICAL", "text": "Hotter"}).json()["alarms"][0]
    assert first["id"] == second["id"]
    assert second["count"] == 2
    alarm = Alarm.objects.get(pk=first["id"])
    assert alarm.severity == "CRITICAL"
    assert post(client, "alarms", {"type": "x", "severity": "BAD"}).status_code == 400
    assert post(client, "location", {"latitude": 52.5, "longitude": 13.4}).status_code == 201
    assert post(client, "location", {"latitude": 91, "longitude": 13.4}).status_code == 400
    device.refresh_from_db()
    assert (device.latitude, device.longitude) == (52.5, 13.4)
    assert device.last_seen_at is not None
    assert Event.objects.filter(device_id=device.pk).count() == 1


def test_operations_flow_and_device_isolation(acme, acme_admin):
    device, credential = make_device(acme)
    _other, other_credential = make_device(acme)
    operation = do_create_operation(device, kind="restart", parameters={"delay": 5}, actor=acme_admin)
    client = device_client(credential)
    assert client.get("/api/device/v1/operations").json()["operations"] == [
        {"id": operation.pk, "kind": "restart", "parameters": {"delay": 5}}
    ]
    assert device_client(other_credential).get("/api/device/v1/operations").json()["operations"] == []
    assert (
        post(device_client(other_credential), f"operations/{operation.pk}", {"status": "EXECUTING"}).status_code == 404
    )
    assert post(client, f"operations/{operation.pk}", {"status": "EXECUTING"}).status_code == 200
    assert post(client, f"operations/{operation.pk}", {"status": "FAILED", "message": "disk full"}).status_code == 200
    assert post(client, f"operations/{operation.pk}", {"status": "SUCCESSFUL"}).status_code == 409
    operation.refresh_from_db()
    assert (operation.status, operation.failure_reason) == ("FAILED", "disk full")
    assert list(OperationResult.objects.filter(operation_id=operation.pk).values_list("status", flat=True)) == [
        "EXECUTING",
        "FAILED",
    ]


def test_decommission_revokes_cancels_and_frees_the_external_id(acme, acme_admin):
    device, credential = make_device(acme, external_id="SN-REUSE")
    operation = do_create_operation(device, kind="restart", parameters={}, actor=acme_admin)
    do_decommission_devices([device.pk], actor=acme_admin)
    device.refresh_from_db()
    operation.refresh_from_db()
    assert device.status == "decommissioned"
    assert device.credential_digest is None
    assert operation.status == Operation.Status.CANCELLED
    assert post(device_client(credential), "heartbeat", {}).status_code == 401
    new_device, _ = make_device(acme, external_id="SN-REUSE")
    assert new_device.pk != device.pk
    assert AuditEntry.objects.filter(event="device.decommission", tenant=acme).exists()


def test_device_rate_limit_names_the_limit(acme):
    Tenant.objects.filter(pk=acme.pk).update(rate_limits={"device": {"second": "2/s"}})
    _, credential = make_device(acme)
    client = device_client(credential)
    codes = [post(client, "heartbeat", {}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    response = post(client, "heartbeat", {})
    assert "'device per second'" in response.json()["detail"]
    assert int(response["Retry-After"]) >= 1


def escaped_pem(der: bytes) -> str:
    """A certificate as nginx's ``$ssl_client_escaped_cert`` passes it: URL-encoded PEM."""
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return quote("\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----", ""]), safe="")


# Stand-ins for DER certificates: the app hashes the bytes, it does not parse them (nginx verified them).
# 300 bytes so the base64 has "+" and "/" (escaped by nginx) and spans several PEM lines.
DEVICE_CERT = bytes(range(256)) + bytes(44)
OTHER_CERT = bytes(reversed(DEVICE_CERT))


def test_certificate_pinning_is_checked_only_from_trusted_proxies(acme, settings):
    device, credential = make_device(acme)
    Device.objects.filter(pk=device.pk).update(certificate_fingerprint=hashlib.sha256(DEVICE_CERT).hexdigest().upper())
    client = device_client(credential)

    def heartbeat(**headers: Any) -> int:
        return client.post("/api/device/v1/heartbeat", "{}", content_type="application/json", **headers).status_code

    matching = escaped_pem(DEVICE_CERT)
    assert heartbeat(HTTP_X_CLIENT_CERT=matching) == 401  # the header is not believed from an untrusted peer
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert heartbeat(HTTP_X_CLIENT_CERT=matching) == 200
    assert heartbeat(HTTP_X_CLIENT_CERT=escaped_pem(OTHER_CERT)) == 401
    assert heartbeat() == 401
    # A bare fingerprint (public knowledge) is no longer a certificate, whatever the header.
    fingerprint = hashlib.sha256(DEVICE_CERT).hexdigest()
    assert heartbeat(HTTP_X_CLIENT_CERT_SHA256=fingerprint) == 401
    assert heartbeat(HTTP_X_CLIENT_CERT=fingerprint) == 401


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "%ZZ%",
        escaped_pem(DEVICE_CERT).replace("%2B", "%21"),  # "!" is not base64
        escaped_pem(DEVICE_CERT).replace("-----END%20CERTIFICATE-----", ""),  # truncated
        escaped_pem(DEVICE_CERT).replace("AAAA", "AAA", 1),  # a character short: bad base64 length
        escaped_pem(DEVICE_CERT) + escaped_pem(DEVICE_CERT),  # two certificates
        "-----BEGIN%20CERTIFICATE-----%0A%0A-----END%20CERTIFICATE-----",  # empty
        "-----BEGIN%20CERTIFICATE-----%0A%C3%A9%E2%82%AC%0A-----END%20CERTIFICATE-----",  # non-ASCII
        "-----BEGIN CERTIFICATE-----\n\xe9\n-----END CERTIFICATE-----",  # latin-1, as WSGI decodes raw bytes
    ],
)
def test_malformed_certificate_headers_are_a_401_not_a_500(acme, settings, value):
    device, credential = make_device(acme)
    Device.objects.filter(pk=device.pk).update(certificate_fingerprint=hashlib.sha256(DEVICE_CERT).hexdigest())
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    response = device_client(credential).post(
        "/api/device/v1/heartbeat", "{}", content_type="application/json", HTTP_X_CLIENT_CERT=value
    )
    assert response.status_code == 401
    assert certificate_sha256(value) is None


def test_certificate_sha256_reads_nginx_escaped_pem():
    assert certificate_sha256(escaped_pem(DEVICE_CERT)) == hashlib.sha256(DEVICE_CERT).hexdigest()
    # Unescaped PEM with CRLF line ends is the same certificate.
    pem = unquote(escaped_pem(DEVICE_CERT)).replace("\n", "\r\n")
    assert certificate_sha256(pem) == hashlib.sha256(DEVICE_CERT).hexdigest()


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1e400", "-1e400"])
def test_numbers_beyond_a_double_are_a_400_not_a_500(acme, number):
    _, credential = make_device(acme)
    body = '{"type": "T", "series": "s", "value": ' + number + "}"
    response = device_client(credential).post("/api/device/v1/measurements", body, content_type="application/json")
    assert response.status_code == 400
    assert "number" in response.json()["detail"]
    assert Measurement.objects.count() == 0
