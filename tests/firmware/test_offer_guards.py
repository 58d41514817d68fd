"""Guards found by the attack review of rollouts: what is offered, what a device may report, what is audited.

Each test failed before its fix (review branch ``attack``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from devices.models import DeviceType
from devices.services.registry import do_move_devices
from firmware.engine import sweep_timeouts
from firmware.models import FirmwareImage, Rollout, RolloutTarget
from firmware.services import do_create_rollout, do_plan_rollout, do_update_firmware_policy
from firmware.services.rollouts import run_planning
from tenants.models import Action, Role
from tests.factories import api_client, device_client, grant, make_group, make_user
from tests.firmware.test_device_updates import body_of
from tests.firmware.updates import device_of, run, running, signed_image

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

URL = "/api/v1/rollouts/"
NEXT = "/api/device/v1/firmware/next"
STATUS = "/api/device/v1/firmware/status"


@pytest.fixture
def image(acme: Any, sensor: DeviceType, keypair: tuple[bytes, str]) -> FirmwareImage:
    return signed_image(acme, sensor, version="2.0.0", security_version=3, keypair=keypair)


def standard_user_with_groups(acme: Any) -> tuple[Any, Any, Any]:
    """A Standard user who may change ``north`` and only view ``south``; the policy lets them roll out."""
    north, south = make_group(acme, "north"), make_group(acme, "south")
    user = make_user(acme, Role.Kind.STANDARD)
    grant(north, [Action.VIEW, Action.CHANGE], user=user)
    grant(south, [Action.VIEW], user=user)
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    return user, north, south


def planned_by(user: Any, image: FirmwareImage, **targets: Any) -> Rollout:
    rollout = do_create_rollout(image=image, name="Mine", waves=[{}], actor=user, **targets)
    do_plan_rollout(rollout, actor=user)
    run_planning(rollout.pk)
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.READY, rollout.status_reason
    return rollout


def test_a_device_moved_out_of_the_rollouts_groups_is_not_offered_it(acme, acme_admin, sensor, image):
    user, north, south = standard_user_with_groups(acme)
    device, credential = device_of(acme, sensor)
    do_move_devices([device.pk], north, actor=acme_admin)
    rollout = planned_by(user, image, target_groups=[north.pk])
    do_move_devices([device.pk], south, actor=acme_admin)  # out of the Standard user's reach
    assert api_client(user).post(f"{URL}{rollout.pk}/start/", format="json").status_code == 200
    run(rollout)
    assert device_client(credential).get(NEXT, {"security_version": 0}).status_code == 204
    target = RolloutTarget.objects.get(rollout=rollout, device=device)
    assert (target.status, target.error_code) == ("skipped", "left_target_groups")
    assert AuditEntry.objects.filter(event="firmware.target.skipped", object_id=target.pk).exists()


def test_an_expired_image_is_not_offered(acme, acme_admin, sensor, image):
    device, credential = device_of(acme, sensor)
    rollout = running(image, acme_admin)
    FirmwareImage.objects.filter(pk=image.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert device_client(credential).get(NEXT, {"security_version": 0}).status_code == 204
    assert RolloutTarget.objects.get(rollout=rollout, device=device).error_code == "image_expired"


def test_idle_rollouts_do_not_crowd_out_a_running_one(acme, acme_admin, sensor, image, keypair):
    user, north, _ = standard_user_with_groups(acme)
    device, credential = device_of(acme, sensor)
    do_move_devices([device.pk], north, actor=acme_admin)
    for _ in range(20):
        planned_by(user, image, target_groups=[north.pk])  # ready, never started
    fix = signed_image(acme, sensor, version="2.0.1", security_version=4, keypair=keypair)
    running(fix, acme_admin)
    answer = device_client(credential).get(NEXT, {"security_version": 0})
    assert answer.status_code == 200
    assert answer.json()["version"] == "2.0.1"


def test_timeouts_are_audited_per_rollout(acme, acme_admin, sensor, image):
    _, credential = device_of(acme, sensor)
    rollout = running(image, acme_admin, device_timeout_seconds=60)
    client = device_client(credential)
    target = client.get(NEXT, {"security_version": 0}).json()["target"]
    assert client.post(STATUS, {"target": target, "status": "downloading"}, format="json").status_code == 200
    RolloutTarget.objects.filter(pk=target).update(started_at=timezone.now() - timedelta(hours=1))
    assert sweep_timeouts() == 1
    entry = AuditEntry.objects.get(event="firmware.rollout.timeouts")
    assert (entry.object_id, entry.additional_data["targets"]) == (rollout.pk, 1)


@pytest.mark.parametrize("cron", ["99 * * * *", "0 0 31 2 *", "0 0 30 2 *"])
def test_a_window_that_never_opens_is_refused(acme_admin, image, cron):
    body = {
        "name": "Night",
        "image": image.pk,
        "waves": [{}],
        "window_cron": cron,
        "window_minutes": 60,
        "window_timezone": "UTC",
    }
    response = api_client(acme_admin).post(URL, body, format="json")
    assert response.status_code == 400
    assert "never" in str(response.json()["window_cron"]) or "ever fires" in str(response.json()["window_cron"])
    assert not Rollout.objects.exists()


@pytest.mark.parametrize("version", ["2.0.0\u202e", "\u2066evil\u2069", "1.0\u2028x"])
def test_a_device_cannot_report_a_version_that_reads_differently(acme, sensor, version):
    device, credential = device_of(acme, sensor)
    client = device_client(credential)
    assert client.get(NEXT, {"security_version": 0, "version": version}).status_code == 400
    assert client.post("/api/device/v1/heartbeat", {"firmware_version": version}, format="json").status_code == 400
    device.refresh_from_db()
    assert device.firmware_version == "1.0.0"


@pytest.mark.parametrize(("header", "status"), [("bytes=\u0661-\u0662", 200), ("bytes=0-" + "9" * 25, 206)])
def test_range_takes_ascii_digits_and_clamps_long_bounds(acme, acme_admin, sensor, image, header, status):
    _, credential = device_of(acme, sensor)
    running(image, acme_admin)
    client = device_client(credential)
    offer = client.get(NEXT, {"security_version": 0}).json()
    answer = client.get(offer["download_url"], HTTP_RANGE=header)
    assert answer.status_code == status
    assert len(body_of(answer)) == image.size  # the whole file either way
