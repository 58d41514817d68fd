"""The device update protocol: next (offers), status (reports), download (Range), keys."""

from __future__ import annotations

import base64
import hashlib
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from devices.models import Device, DeviceType
from devices.services.registry import do_block_devices, do_decommission_devices
from firmware import counters, signing
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.storage import open_blob
from tenants.models import Tenant
from tests.factories import api_client, device_client
from tests.firmware.updates import device_of, planned, running, signed_image

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

NEXT = "/api/device/v1/firmware/next"
STATUS = "/api/device/v1/firmware/status"


def download_url(image_id: int) -> str:
    return f"/api/device/v1/firmware/images/{image_id}/download"


def poll(credential: str, security_version: int = 0, **params: Any) -> Any:
    return device_client(credential).get(NEXT, {"security_version": security_version, **params})


def report(credential: str, target: int, status: str, **fields: Any) -> Any:
    return device_client(credential).post(STATUS, {"target": target, "status": status, **fields}, format="json")


def target_of(device: Device, rollout: Rollout) -> RolloutTarget:
    return RolloutTarget.objects.get(device=device, rollout=rollout)


def assert_counters_exact(rollout: Rollout) -> None:
    waves = list(RolloutWave.objects.filter(rollout=rollout).values_list("pk", flat=True))
    assert counters.counts(waves) == counters.recount(waves)


@pytest.fixture
def image(acme: Any, sensor: DeviceType, keypair: tuple[bytes, str]) -> FirmwareImage:
    return signed_image(acme, sensor, version="2.0.0", security_version=3, keypair=keypair)


@pytest.fixture
def unit(acme: Any, sensor: DeviceType) -> tuple[Device, str]:
    return device_of(acme, sensor)


# --- next ----------------------------------------------------------------------------------


def test_nothing_to_do_is_204_with_a_jittered_poll_interval(unit, settings):
    settings.DEVICE_FIRMWARE_POLL_SECONDS = 1000
    answers = [poll(unit[1]) for _ in range(12)]
    assert {a.status_code for a in answers} == {204}
    intervals = {int(a["Retry-After"]) for a in answers}
    assert all(800 <= i <= 1200 for i in intervals)
    assert len(intervals) > 1  # jittered
    assert answers[0].content == b""


def test_an_offer_carries_the_signed_manifest_and_is_the_same_on_every_poll(acme_admin, image, unit, keypair):
    device, credential = unit
    rollout = running(image, acme_admin)
    first = poll(credential, 1)
    assert first.status_code == 200, first.content
    body = first.json()
    target = target_of(device, rollout)
    assert body["target"] == target.pk and body["status"] == "offered"
    assert (body["version"], body["security_version"], body["sha256"], body["size"]) == (
        "2.0.0",
        3,
        image.sha256,
        image.size,
    )
    assert body["download_url"].endswith(download_url(image.pk))
    raw = signing.parse_public_key(keypair[1])
    assert body["key_id"] == signing.key_id(raw)
    assert signing.verify(raw, body["manifest"], body["signature"])
    assert body["manifest"]["sha256"] == image.sha256
    assert target.status == "offered" and target.attempts == 1 and target.offered_at is not None
    # Idempotent: the open target again, not offered twice.
    again = poll(credential, 1)
    assert again.status_code == 200 and again.json()["target"] == target.pk
    target.refresh_from_db()
    assert target.attempts == 1
    assert_counters_exact(rollout)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"security_version": ""},
        {"security_version": "-1"},
        {"security_version": "x"},
        {"security_version": "1e3"},
        {"security_version": str(2**31)},
        {"security_version": "٣"},  # a non-ASCII digit
        {"security_version": "1", "version": "a" * 65},
        {"security_version": "1", "version": "bad\nversion"},
        {"security_version": "1", "extra": "1"},
    ],
)
def test_bad_poll_parameters_are_400(unit, params):
    response = device_client(unit[1]).get(NEXT, params)
    assert response.status_code == 400, response.content
    assert response.json()


def test_the_reported_version_is_recorded_as_the_devices_firmware_version(unit):
    device, credential = unit
    assert poll(credential, version="1.5.0").status_code == 204
    device.refresh_from_db()
    assert device.firmware_version == "1.5.0"


@pytest.mark.parametrize(
    ("rollout_status", "wave_status", "offered"),
    [
        ("ready", "pending", False),
        ("paused", "active", False),
        ("canceling", "active", False),
        ("running", "pending", False),
        ("running", "halted", False),
        ("running", "active", True),
        ("running", "soaking", True),
        ("running", "succeeded", True),  # stragglers of an earlier wave are still served
    ],
)
def test_only_running_rollouts_with_a_started_wave_are_offered(
    acme_admin, image, unit, rollout_status, wave_status, offered
):
    rollout = planned(image, acme_admin)
    Rollout.objects.filter(pk=rollout.pk).update(status=rollout_status)
    RolloutWave.objects.filter(rollout=rollout).update(status=wave_status)
    response = poll(unit[1])
    assert response.status_code == (200 if offered else 204)
    assert target_of(unit[0], rollout).status == ("offered" if offered else "pending")


def test_a_later_start_time_waits_and_shortens_the_poll(acme_admin, image, unit, settings):
    settings.DEVICE_FIRMWARE_POLL_SECONDS = 3600
    rollout = running(image, acme_admin, start_at=timezone.now() + timedelta(seconds=300))
    response = poll(unit[1])
    assert response.status_code == 204
    assert 300 <= int(response["Retry-After"]) <= 300 + 61
    Rollout.objects.filter(pk=rollout.pk).update(start_at=timezone.now() - timedelta(seconds=1))
    assert poll(unit[1]).status_code == 200


def _cron_at(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.minute} {moment.hour} * * *"


def test_outside_the_maintenance_window_nothing_is_offered_and_the_poll_comes_back_when_it_opens(
    acme_admin, image, unit, settings
):
    settings.DEVICE_FIRMWARE_POLL_SECONDS = 3600
    opens = timezone.now() + timedelta(minutes=10)
    rollout = running(image, acme_admin, window_cron=_cron_at(opens), window_minutes=30, window_timezone="UTC")
    response = poll(unit[1])
    assert response.status_code == 204
    until = (opens.replace(second=0, microsecond=0) - timezone.now()).total_seconds()
    assert until - 2 <= int(response["Retry-After"]) <= until + 62
    assert target_of(unit[0], rollout).status == "pending"
    # Inside a window that opened five minutes ago (in another time zone, to be sure zones apply).
    opened = timezone.now() - timedelta(minutes=5)
    berlin = opened.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))
    Rollout.objects.filter(pk=rollout.pk).update(
        window_cron=f"{berlin.minute} {berlin.hour} * * *", window_timezone="Europe/Berlin"
    )
    assert poll(unit[1]).status_code == 200


def test_the_pace_limits_offers_per_minute_per_rollout(acme, acme_admin, sensor, image):
    fleet = [device_of(acme, sensor) for _ in range(3)]
    rollout = running(image, acme_admin, pace_per_minute=2)
    answers = [poll(credential) for _, credential in fleet]
    assert [a.status_code for a in answers] == [200, 200, 204]
    assert 1 <= int(answers[2]["Retry-After"]) <= 30 + 61
    assert RolloutTarget.objects.filter(rollout=rollout, status="offered").count() == 2
    # An open target is answered again without spending the pace.
    assert poll(fleet[0][1]).status_code == 200


def test_anti_rollback_skips_an_image_below_the_reported_security_version(acme_admin, image, unit):
    device, credential = unit
    rollout = running(image, acme_admin)
    response = poll(credential, security_version=4)
    assert response.status_code == 204
    target = target_of(device, rollout)
    assert target.status == "skipped" and target.error_code == "anti_rollback"
    entry = AuditEntry.objects.get(event="firmware.target.skipped")
    assert entry.additional_data["error_code"] == "anti_rollback" and entry.tenant_id == device.tenant_id
    assert_counters_exact(rollout)
    # Equal is fine (a re-install of the same security level).
    other = running(signed_image(device.tenant, device.type, version="2.1.0", security_version=4), acme_admin)
    assert poll(credential, security_version=4).json()["target"] == target_of(device, other).pk


def test_anti_rollback_also_counts_images_the_device_succeeded_with(acme_admin, sensor, unit):
    device, credential = unit
    tenant = device.tenant
    newer = running(signed_image(tenant, sensor, version="3.0.0", security_version=5), acme_admin)
    offer = poll(credential, 0).json()
    for status in ("downloading", "downloaded", "verified", "installing"):
        assert report(credential, offer["target"], status).status_code == 200
    assert report(credential, offer["target"], "succeeded", version="3.0.0").json()["status"] == "succeeded"
    older = running(signed_image(tenant, sensor, version="2.5.0", security_version=4), acme_admin)
    # The device lies (or forgot) about its security version: the server remembers.
    assert poll(credential, 0).status_code == 204
    assert target_of(device, older).error_code == "anti_rollback"
    assert target_of(device, newer).status == "succeeded"


def test_a_device_has_at_most_one_open_target(acme_admin, sensor, image, unit):
    device, credential = unit
    first = running(image, acme_admin)
    second = running(signed_image(device.tenant, sensor, version="2.0.1", security_version=3), acme_admin)
    offer = poll(credential).json()
    assert offer["target"] == target_of(device, first).pk
    assert poll(credential).json()["target"] == offer["target"]
    assert target_of(device, second).status == "pending"
    report(credential, offer["target"], "failed", error_code="flash_write_failed")
    assert poll(credential).json()["target"] == target_of(device, second).pk


# --- status ----------------------------------------------------------------------------------


def test_a_full_update_succeeds_only_after_installing_with_the_images_version(acme_admin, image, unit):
    device, credential = unit
    rollout = running(image, acme_admin)
    target = poll(credential).json()["target"]
    answer = report(credential, target, "downloading", progress=10)
    assert answer.status_code == 200 and answer.json() == {
        "target": target,
        "status": "downloading",
        "progress": 10,
        "error_code": "",
    }
    row = RolloutTarget.objects.get(pk=target)
    started = row.started_at
    assert started is not None
    assert report(credential, target, "downloading", progress=60).json()["progress"] == 60
    for status in ("downloaded", "verified", "installing"):
        assert report(credential, target, status).json()["status"] == status
    row.refresh_from_db()
    assert row.started_at == started  # from the first progress report
    assert not AuditEntry.objects.filter(event__startswith="firmware.target").exists()  # progress is not audited
    done = report(credential, target, "succeeded", version="2.0.0")
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    row.refresh_from_db()
    assert row.reported_version == "2.0.0" and row.finished_at is not None
    device.refresh_from_db()
    assert device.firmware_version == "2.0.0"
    entry = AuditEntry.objects.get(event="firmware.target.succeeded")
    assert entry.tenant_id == device.tenant_id and entry.additional_data["version"] == "2.0.0"
    assert_counters_exact(rollout)
    # Finished: nothing more to do.
    assert poll(credential, 3).status_code == 204


def test_success_without_installing_is_a_conflict(acme_admin, image, unit):
    credential = unit[1]
    running(image, acme_admin)
    target = poll(credential).json()["target"]
    report(credential, target, "downloading")
    response = report(credential, target, "succeeded", version="2.0.0")
    assert response.status_code == 409 and "installing" in response.json()["detail"]
    assert RolloutTarget.objects.get(pk=target).status == "downloading"


def test_booting_the_old_image_is_a_failure(acme_admin, image, unit):
    device, credential = unit
    rollout = running(image, acme_admin)
    target = poll(credential).json()["target"]
    report(credential, target, "installing")  # the lost reports on the way are walked through
    answer = report(credential, target, "succeeded", version="1.0.0")
    assert answer.status_code == 200
    assert answer.json()["status"] == "failed" and answer.json()["error_code"] == "booted_old_image"
    row = RolloutTarget.objects.get(pk=target)
    assert row.reported_version == "1.0.0"
    device.refresh_from_db()
    assert device.firmware_version == "1.0.0"
    entry = AuditEntry.objects.get(event="firmware.target.failed")
    assert entry.additional_data["error_code"] == "booted_old_image"
    # The same report again changes nothing and says what happened.
    again = report(credential, target, "succeeded", version="1.0.0")
    assert again.status_code == 200 and again.json()["error_code"] == "booted_old_image"
    assert AuditEntry.objects.filter(event="firmware.target.failed").count() == 1
    assert_counters_exact(rollout)


def test_duplicate_and_out_of_order_reports_change_nothing_twice(acme_admin, image, unit):
    credential = unit[1]
    rollout = running(image, acme_admin)
    target = poll(credential).json()["target"]
    wave = RolloutWave.objects.get(rollout=rollout)
    # Lost reports: verified straight from offered walks downloading and downloaded.
    assert report(credential, target, "verified").json()["status"] == "verified"
    before = counters.counts([wave.pk])
    assert before[wave.pk] == {"verified": 1}
    for late in ("downloading", "downloaded", "verified"):
        answer = report(credential, target, late, progress=5)
        assert answer.status_code == 200 and answer.json()["status"] == "verified"
    assert counters.counts([wave.pk]) == before
    report(credential, target, "installing")
    report(credential, target, "succeeded", version="2.0.0")
    for late in ("installing", "succeeded", "downloading"):
        assert report(credential, target, late, version="2.0.0").json()["status"] == "succeeded"
    assert AuditEntry.objects.filter(event="firmware.target.succeeded").count() == 1
    assert_counters_exact(rollout)
    # A real contradiction: failed after succeeded.
    response = report(credential, target, "failed", error_code="oops")
    assert response.status_code == 409
    assert RolloutTarget.objects.get(pk=target).status == "succeeded"


def test_failed_and_rejected_reports_are_terminal_and_audited(acme, acme_admin, sensor, image):
    c1, c2 = device_of(acme, sensor)[1], device_of(acme, sensor)[1]
    rollout = running(image, acme_admin)
    t1, t2 = poll(c1).json()["target"], poll(c2).json()["target"]
    assert report(c1, t1, "rejected", error_code="battery_low").json() == {
        "target": t1,
        "status": "rejected",
        "progress": None,
        "error_code": "battery_low",
    }
    report(c2, t2, "downloading")
    assert report(c2, t2, "rejected").status_code == 409  # too late to refuse: report failed
    failed = report(c2, t2, "failed")
    assert failed.json()["status"] == "failed" and failed.json()["error_code"] == "device_error"
    assert set(AuditEntry.objects.filter(event__startswith="firmware.target").values_list("event", flat=True)) == {
        "firmware.target.rejected",
        "firmware.target.failed",
    }
    assert_counters_exact(rollout)


def test_a_late_report_after_the_server_decided_gets_the_current_state(acme_admin, image, unit):
    credential = unit[1]
    rollout = running(image, acme_admin)
    target = poll(credential).json()["target"]
    report(credential, target, "downloading")
    counters.move_targets(RolloutTarget.objects.filter(pk=target), "canceled")
    for late in ("downloaded", "failed"):
        answer = report(credential, target, late)
        assert answer.status_code == 200 and answer.json()["status"] == "canceled"
    assert_counters_exact(rollout)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"target": 1},
        {"status": "downloading"},
        {"target": "1", "status": "downloading"},
        {"target": True, "status": "downloading"},
        {"target": 1, "status": "offered"},
        {"target": 1, "status": "timed_out"},
        {"target": 1, "status": "downloading", "progress": 101},
        {"target": 1, "status": "downloading", "progress": 5.5},
        {"target": 1, "status": "failed", "error_code": "Has Spaces"},
        {"target": 1, "status": "succeeded"},
        {"target": 1, "status": "succeeded", "version": 2},
        {"target": 1, "status": "downloading", "device": 5},
        {"target": 2**70, "status": "downloading"},
    ],
)
def test_bad_reports_are_400_and_change_nothing(acme_admin, image, unit, body):
    running(image, acme_admin)
    poll(unit[1])
    response = device_client(unit[1]).post(STATUS, body, format="json")
    assert response.status_code == 400, response.content
    assert RolloutTarget.objects.get(device=unit[0]).status == "offered"


def test_non_json_and_oversized_reports_are_refused(unit, settings):
    client = device_client(unit[1])
    assert client.post(STATUS, "target=1", content_type="text/plain").status_code == 415
    assert client.post(STATUS, b"{", content_type="application/json").status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    big = {"target": 1, "status": "failed", "error_code": "x" * 200}
    assert client.post(STATUS, big, format="json").status_code == 413


def test_another_devices_or_tenants_target_is_the_same_404_as_a_missing_one(
    acme, globex, acme_admin, sensor, image, unit
):
    running(image, acme_admin)
    target = poll(unit[1]).json()["target"]
    neighbour = device_of(acme, sensor)[1]
    globex_type = DeviceType.objects.create(tenant=globex, manufacturer="ACME", model="Sensor")
    stranger = device_of(globex, globex_type)[1]
    answers = [report(c, target, "downloading") for c in (neighbour, stranger)]
    answers.append(report(unit[1], target + 10_000, "downloading"))
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert RolloutTarget.objects.get(pk=target).status == "offered"


# --- download ------------------------------------------------------------------------------


@pytest.fixture
def offered(acme_admin: Any, image: FirmwareImage, unit: tuple[Device, str]) -> tuple[FirmwareImage, str, bytes]:
    """An image offered to ``unit``: (image, the device's credential, the image's bytes)."""
    running(image, acme_admin)
    assert poll(unit[1]).status_code == 200
    with open_blob(image.sha256) as blob:
        data = blob.read()
    assert hashlib.sha256(data).hexdigest() == image.sha256
    return image, unit[1], data


def fetch(credential: str, image_id: int, method: str = "get", **headers: str) -> Any:
    client = device_client(credential)
    return getattr(client, method)(download_url(image_id), **{f"HTTP_{k.upper()}": v for k, v in headers.items()})


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_whole_image_with_etag_and_accept_ranges(offered):
    image, credential, data = offered
    response = fetch(credential, image.pk)
    assert response.status_code == 200
    assert body_of(response) == data
    assert response["ETag"] == f'"{image.sha256}"' and response["Accept-Ranges"] == "bytes"
    assert response["Content-Length"] == str(len(data)) and response["Content-Type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 2999), ("bytes=-500", 2500, 2999), ("bytes=2990-9999", 2990, 2999)],
)
def test_a_single_range_is_206_with_content_range(offered, header, first, last):
    image, credential, data = offered
    response = fetch(credential, image.pk, range=header)
    assert response.status_code == 206
    assert body_of(response) == data[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
    assert response["Content-Length"] == str(last - first + 1)


def test_resuming_with_range_yields_the_exact_bytes(offered):
    image, credential, data = offered
    parts, position = [], 0
    while position < len(data):
        response = fetch(credential, image.pk, range=f"bytes={position}-{position + 999}", if_range=f'"{image.sha256}"')
        assert response.status_code == 206
        parts.append(body_of(response))
        position += len(parts[-1])
    assert hashlib.sha256(b"".join(parts)).hexdigest() == image.sha256


def test_an_unsatisfiable_range_is_416(offered):
    image, credential, data = offered
    for header in (f"bytes={len(data)}-", "bytes=-0", f"bytes={len(data) + 5}-{len(data) + 9}"):
        response = fetch(credential, image.pk, range=header)
        assert response.status_code == 416, header
        assert response["Content-Range"] == f"bytes */{len(data)}"
        assert response.json()["detail"]


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-5", "bytes=9-2", "bytes=", "garbage"])
def test_other_range_headers_are_ignored_and_the_whole_image_sent(offered, header):
    image, credential, data = offered
    response = fetch(credential, image.pk, range=header)
    assert response.status_code == 200 and body_of(response) == data


def test_if_range_with_another_etag_sends_the_whole_image(offered):
    image, credential, data = offered
    response = fetch(credential, image.pk, range="bytes=0-9", if_range='"' + "0" * 64 + '"')
    assert response.status_code == 200 and body_of(response) == data
    dated = fetch(credential, image.pk, range="bytes=0-9", if_range="Wed, 21 Oct 2015 07:28:00 GMT")
    assert dated.status_code == 200


def test_if_none_match_and_head(offered):
    image, credential, data = offered
    assert fetch(credential, image.pk, if_none_match=f'"{image.sha256}"').status_code == 304
    head = fetch(credential, image.pk, method="head")
    assert head.status_code == 200 and head.content == b""
    assert head["Content-Length"] == str(len(data)) and head["ETag"] == f'"{image.sha256}"'
    assert fetch(credential, image.pk, method="post").status_code == 405


def test_an_untargeted_missing_or_foreign_image_is_the_same_404(acme, globex, acme_admin, sensor, offered):
    image, credential, _ = offered
    untargeted = signed_image(acme, sensor, version="9.0.0", security_version=3)
    globex_type = DeviceType.objects.create(tenant=globex, manufacturer="ACME", model="Sensor")
    foreign = signed_image(globex, globex_type, version="2.0.0")
    neighbour = device_of(acme, sensor)[1]  # same tenant, no target for the image
    globex_unit = device_of(globex, globex_type)[1]
    answers = [
        fetch(credential, untargeted.pk),
        fetch(credential, foreign.pk),
        fetch(credential, 10**9),
        fetch(neighbour, image.pk),
        fetch(globex_unit, image.pk),
        fetch(globex_unit, image.pk, method="head"),
    ]
    assert [a.status_code for a in answers] == [404] * 6
    assert len({a.content for a in answers[:5]}) == 1


def test_a_finished_target_no_longer_downloads(offered):
    image, credential, _ = offered
    target = RolloutTarget.objects.get(rollout__image=image)
    report(credential, target.pk, "installing")
    report(credential, target.pk, "succeeded", version=image.version)
    assert fetch(credential, image.pk).status_code == 404


# --- every endpoint ----------------------------------------------------------------------


def _every_endpoint(credential: str, image_id: int, target: int) -> list[Any]:
    client = device_client(credential)
    return [
        client.get(NEXT, {"security_version": 0}),
        client.post(STATUS, {"target": target, "status": "downloading"}, format="json"),
        client.get(download_url(image_id)),
        client.get("/api/device/v1/firmware/keys"),
    ]


@pytest.mark.parametrize("barred", ["blocked", "decommissioned"])
def test_a_blocked_or_decommissioned_device_is_refused_everywhere(acme_admin, offered, unit, barred):
    image, credential, _ = offered
    target = RolloutTarget.objects.get(device=unit[0])
    if barred == "blocked":
        do_block_devices([unit[0].pk], actor=acme_admin)
    else:
        do_decommission_devices([unit[0].pk], actor=acme_admin)
    answers = _every_endpoint(credential, image.pk, target.pk)
    assert {a.status_code for a in answers} <= {401, 403}
    target.refresh_from_db()
    assert target.status in ("offered", "canceled")


def test_no_credential_or_a_user_token_is_401_everywhere(offered):
    image, _, _ = offered
    for secret in ("", "cot_usr_nope", "cot_dev_nope"):
        answers = _every_endpoint(secret, image.pk, 1)
        assert {a.status_code for a in answers} == {401}, secret


def test_the_device_rate_limit_applies(acme, offered):
    image, credential, _ = offered
    Tenant.objects.filter(pk=acme.pk).update(rate_limits={"device": {"second": "2/s", "minute": "2/min"}})
    codes = [fetch(credential, image.pk, method="head").status_code for _ in range(4)]
    assert codes[0] == 200 and codes[-1] == 429
    assert poll(credential).status_code == 429


def test_keys_lists_the_tenants_active_keys_only(acme, globex, image, unit, keypair):
    response = device_client(unit[1]).get("/api/device/v1/firmware/keys")
    assert response.status_code == 200
    raw = signing.parse_public_key(keypair[1])
    assert response.json() == {"keys": [{"key_id": signing.key_id(raw), "public_key": base64.b64encode(raw).decode()}]}
    acme.firmware_keys.update(revoked_at=timezone.now())
    assert device_client(unit[1]).get("/api/device/v1/firmware/keys").json() == {"keys": []}


def test_the_device_openapi_document_describes_the_firmware_paths():
    document = api_client().get("/api/device/v1/schema").json()
    assert {"/firmware/next", "/firmware/status", "/firmware/keys", "/firmware/images/{image_id}/download"} <= set(
        document["paths"]
    )
    assert "204" in document["paths"]["/firmware/next"]["get"]["responses"]
    assert "416" in document["paths"]["/firmware/images/{image_id}/download"]["get"]["responses"]
