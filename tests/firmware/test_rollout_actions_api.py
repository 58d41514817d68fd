"""``/api/v1/rollouts/{id}/start|pause|resume|cancel|retry|advance/``: roles, 409s as JSON, bad input, audit."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEntry
from devices.models import DeviceType
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.services import do_start_rollout, do_update_firmware_policy
from tenants.models import Action, Role
from tests.factories import api_client, grant, make_group, make_user
from tests.firmware.rollout_scene import in_wave, planned, spend_retries, walk, wave
from tests.firmware.test_rollout_planning import image_for

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

URL = "/api/v1/rollouts/"
ACTIONS = ["start", "pause", "resume", "cancel", "retry", "advance"]


@pytest.fixture
def image(acme: Any, sensor: DeviceType) -> FirmwareImage:
    return image_for(acme, sensor)


@pytest.fixture
def ready(image: FirmwareImage, sensor: DeviceType) -> Rollout:
    return planned(image, 4, device_type=sensor, waves=[{"count": 2}, {}])


def post(client: Any, rollout: Rollout, action: str, body: Any = None) -> Any:
    return client.post(f"{URL}{rollout.pk}/{action}/", body, format="json")


def test_an_administrator_runs_a_rollout_through_the_api(acme_admin, ready):
    client = api_client(acme_admin)
    started = post(client, ready, "start")
    assert started.status_code == 200, started.content
    assert started.json()["status"] == "running" and started.json()["started_at"]
    paused = post(client, ready, "pause", {"reason": "  Night shift  "})
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert paused.json()["status_reason"] == "Night shift"
    assert post(client, ready, "resume").json()["status"] == "running"
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="succeeded")
    advanced = post(client, ready, "advance")
    assert advanced.status_code == 200 and [w["status"] for w in advanced.json()["waves"]] == ["succeeded", "active"]
    failed = in_wave(ready, 1, 1)
    walk(failed, "failed")
    spend_retries(ready, failed)
    retried = post(client, ready, "retry")
    assert retried.status_code == 200, retried.content
    assert retried.json()["retried"] == 1 and retried.json()["rollout"]["id"] == ready.pk
    assert retried.json()["rollout"]["waves"][1]["counts"] == {"pending": 2}
    canceled = post(client, ready, "cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceling"
    events = list(
        AuditEntry.objects.filter(object_id=str(ready.pk), event__startswith="firmware.rollout.")
        .order_by("pk")
        .values_list("event", "actor")
    )
    assert [(e, a) for e, a in events if a == acme_admin.pk] == [
        (f"firmware.rollout.{verb}", acme_admin.pk)
        for verb in ("start", "pause", "resume", "advance", "retry", "cancel")
    ]


@pytest.mark.parametrize(
    ("action", "status"),
    [("start", "running"), ("pause", "ready"), ("resume", "ready"), ("advance", "ready"), ("retry", "ready")],
)
def test_an_illegal_move_is_a_409_with_a_json_message(acme_admin, ready, action, status):
    Rollout.objects.filter(pk=ready.pk).update(status=status)
    response = post(api_client(acme_admin), ready, action)
    assert response.status_code == 409, response.content
    assert status in str(response.json()["detail"])
    assert Rollout.objects.get(pk=ready.pk).status == status


@pytest.mark.parametrize(
    "body",
    [{"reason": 5}, {"reason": "x" * 501}, {"color": "red"}, ["reason"], {"reason": None}],
)
def test_bad_pause_input_is_a_400_that_changes_nothing(acme_admin, ready, body):
    do_start_rollout(ready, actor=acme_admin)
    response = post(api_client(acme_admin), ready, "pause", body)
    assert response.status_code == 400, response.content
    assert isinstance(response.json(), dict)
    assert Rollout.objects.get(pk=ready.pk).status == "running"
    assert not AuditEntry.objects.filter(event="firmware.rollout.pause").exists()


@pytest.mark.parametrize("action", ["plan", "start", "resume", "cancel", "retry", "advance"])
def test_a_body_on_an_action_without_one_is_a_400(acme_admin, ready, action):
    client = api_client(acme_admin)
    broken = client.post(f"{URL}{ready.pk}/{action}/", "{not json", content_type="application/json")
    unexpected = post(client, ready, action, {"force": True})
    assert [broken.status_code, unexpected.status_code] == [400, 400]
    assert "detail" in broken.json() and "detail" in unexpected.json()
    assert Rollout.objects.get(pk=ready.pk).status == "ready"


@pytest.mark.parametrize(
    ("role", "scope", "status"), [(Role.Kind.STANDARD, "write", 404), (Role.Kind.BUSINESS, "read", 403)]
)
def test_standard_and_business_users_without_the_policy_may_not_act(acme, ready, role, scope, status):
    client = api_client(make_user(acme, role), scope=scope)
    assert client.get(f"{URL}{ready.pk}/").status_code == 200
    for action in ACTIONS:
        assert post(client, ready, action).status_code == status, action
    assert Rollout.objects.get(pk=ready.pk).status == "ready"


def test_a_standard_user_acts_on_a_rollout_of_their_groups_when_the_policy_allows(acme, image, sensor):
    north, south = make_group(acme, "north"), make_group(acme, "south")
    user = make_user(acme, Role.Kind.STANDARD)
    grant(north, [Action.VIEW, Action.CHANGE], user=user)
    grant(south, [Action.VIEW], user=user)
    mine = planned(image, 2, device_type=sensor, group=north, waves=[{}])
    theirs = planned(image, 2, device_type=sensor, group=south, waves=[{}])
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    client = api_client(user)
    assert post(client, mine, "start").status_code == 200
    assert post(client, mine, "pause").json()["status_reason"] == f"Paused by {user.email}."
    assert post(client, theirs, "start").status_code == 404
    assert Rollout.objects.get(pk=theirs.pk).status == "ready"
    # A read-only token of the same user changes nothing.
    assert post(api_client(user, scope="read"), mine, "resume").status_code == 403
    assert AuditEntry.objects.get(event="firmware.rollout.start").actor == user


def test_a_support_engineer_under_a_write_grant_may_not_act(support_client, ready):
    for action in ACTIONS:
        response = support_client.post(f"{URL}{ready.pk}/{action}/", content_type="application/json")
        assert response.status_code == 403, (action, response.content)
    assert support_client.get(f"{URL}{ready.pk}/").status_code == 200
    assert Rollout.objects.get(pk=ready.pk).status == "ready"
    assert set(RolloutTarget.objects.filter(rollout=ready).values_list("status", flat=True)) == {"pending"}


def test_anonymous_callers_are_401(ready):
    for action in ACTIONS:
        assert post(api_client(), ready, action).status_code == 401


def test_a_standard_user_creates_rollouts_of_their_own_groups_only_when_the_policy_allows(acme, image, sensor):
    north, south = make_group(acme, "north"), make_group(acme, "south")
    user = make_user(acme, Role.Kind.STANDARD)
    grant(north, [Action.VIEW, Action.CHANGE], user=user)
    grant(south, [Action.VIEW], user=user)
    client = api_client(user)

    def create(**targets: Any) -> Any:
        return client.post(URL, {"name": "Mine", "image": image.pk, "waves": [{}], **targets}, format="json")

    assert create(target_groups=[north.pk]).status_code == 403  # the policy is off
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    for targets in ({}, {"target_groups": [north.pk, south.pk]}, {"target_groups": [north.pk, 999999]}):
        refused = create(**targets)
        assert refused.status_code == 400 and "target_groups" in refused.json(), refused.content
    created = create(target_groups=[north.pk])
    assert created.status_code == 201, created.content
    mine = Rollout.objects.get(pk=created.json()["id"])
    assert mine.created_by == user
    assert post(client, mine, "plan").status_code == 202
