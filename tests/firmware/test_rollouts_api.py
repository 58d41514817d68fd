"""``/api/v1/rollouts/``: create a draft, preview its reach, plan it; administrators only write."""

from __future__ import annotations

from typing import Any

import pytest
from celery import current_app

from audit.models import AuditEntry
from devices.models import DeviceType
from devices.services.registry import do_create_device_type
from firmware.models import FirmwareImage, Rollout, RolloutTarget
from firmware.services import do_create_rollout
from firmware.tasks import plan_rollout
from tenants.models import Role
from tenants.services import do_create_support_grant, do_update_tenant_policy
from tests.factories import api_client, make_group, make_user, verified_client
from tests.firmware.test_rollout_planning import devices, image_for
from tests.support.api_isolation import TenantIsolationChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

URL = "/api/v1/rollouts/"
WAVES = [{"percent": 10}, {"percent": 40}, {}]


@pytest.fixture
def image(acme: Any, sensor: DeviceType) -> FirmwareImage:
    return image_for(acme, sensor)


def payload(image: FirmwareImage, **fields: Any) -> dict[str, Any]:
    return {"name": "Spring update", "image": image.pk, "waves": WAVES, **fields}


def draft(image: FirmwareImage, **targets: Any) -> Rollout:
    return do_create_rollout(image=image, name="Spring update", waves=WAVES, actor=None, tenant=image.tenant, **targets)


def test_an_administrator_creates_a_draft_and_reads_it_with_its_waves(acme_admin, image):
    client = api_client(acme_admin)
    body = payload(
        image,
        waves=[{"count": 2, "auto_advance": True, "soak_seconds": 600}, {"percent": 25.5}, {}],
        target_versions=["1.0.0"],
        target_groups=[5, 5],
        max_retries=3,
        window_cron="0 2 * * 1-5",
        window_minutes=120,
        window_timezone="Europe/Berlin",
    )
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] == "draft" and created["image"] == image.pk and created["planned_total"] == 0
    assert created["target_groups"] == [5] and created["target_versions"] == ["1.0.0"]
    assert created["max_retries"] == 3 and created["window_timezone"] == "Europe/Berlin"
    assert [(w["index"], w["count"], w["percent"]) for w in created["waves"]] == [
        (0, 2, None),
        (1, None, 25.5),
        (2, None, None),
    ]
    assert created["waves"][0]["auto_advance"] is True and created["waves"][0]["soak_seconds"] == 600
    assert AuditEntry.objects.filter(event="firmware.rollout.create", object_id=str(created["id"])).exists()
    detail = client.get(f"{URL}{created['id']}/")
    assert detail.status_code == 200 and detail.json() == created
    listed = client.get(URL, {"status": "draft"}).json()["results"]
    assert [row["id"] for row in listed] == [created["id"]]
    assert client.get(URL, {"status": "ready"}).json()["results"] == []


def test_plan_queues_the_job_and_answers_202_then_planning_twice_is_409(
    acme, acme_admin, sensor, image, django_capture_on_commit_callbacks, monkeypatch
):
    devices(acme, 10, device_type=sensor)
    rollout = draft(image)
    client = api_client(acme_admin)
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args: sent.append((name, args)))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{URL}{rollout.pk}/plan/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "planning" and body["planned_total"] == 0 and body["planning_since"]
    assert sent == [("firmware.tasks.plan_rollout", [rollout.pk])]  # queued after commit
    assert not RolloutTarget.objects.exists()
    assert AuditEntry.objects.get(event="firmware.rollout.plan_requested").actor == acme_admin
    plan_rollout(rollout.pk)  # what the worker does
    body = client.get(f"{URL}{rollout.pk}/").json()
    assert body["status"] == "ready" and body["planned_total"] == 10
    assert [w["planned"] for w in body["waves"]] == [1, 4, 5]
    assert [w["counts"] for w in body["waves"]] == [{"pending": 1}, {"pending": 4}, {"pending": 5}]
    assert RolloutTarget.objects.filter(rollout=rollout).count() == 10
    again = client.post(f"{URL}{rollout.pk}/plan/")
    assert again.status_code == 409 and "detail" in again.json()
    assert RolloutTarget.objects.filter(rollout=rollout).count() == 10


def test_a_plan_with_nothing_matching_ends_in_plan_failed_with_the_reason(acme_admin, image):
    rollout = draft(image)
    response = api_client(acme_admin).post(f"{URL}{rollout.pk}/plan/")
    assert response.status_code == 202
    plan_rollout(rollout.pk)
    body = api_client(acme_admin).get(f"{URL}{rollout.pk}/").json()
    assert body["status"] == "plan_failed" and body["status_reason"]


def test_preview_counts_the_callers_devices_per_group_and_type(acme, acme_admin, globex, sensor, image):
    group = make_group(acme, "north")
    devices(acme, 3, device_type=sensor, group=group)
    devices(acme, 2, device_type=sensor)
    devices(acme, 4, device_type=sensor, version="9.9.9")
    devices(acme, 5, device_type=None)  # no type: the image fits none of them
    globex_type = do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=globex)
    devices(globex, 7, device_type=globex_type, group=make_group(globex))
    client = api_client(acme_admin)
    response = client.get(f"{URL}preview/", {"image": image.pk})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "total": 9,
        "rows": [
            {"group": group.pk, "type": sensor.pk, "count": 3},
            {"group": None, "type": sensor.pk, "count": 6},
        ],
    }
    narrowed = client.get(f"{URL}preview/", {"image": image.pk, "target_versions": ["1.0.0"]}).json()
    assert narrowed["total"] == 5
    by_group = client.get(f"{URL}preview/?image={image.pk}&target_groups={group.pk}&target_groups=999999").json()
    assert by_group == {"total": 3, "rows": [{"group": group.pk, "type": sensor.pk, "count": 3}]}


def test_preview_answers_a_foreign_image_like_a_missing_one(acme_admin, globex, image):
    foreign = image_for(globex, do_create_device_type(manufacturer="G", model="1", actor=None, tenant=globex))
    client = api_client(acme_admin)
    pks = (foreign.pk, foreign.pk + 1000)
    answers = [client.get(f"{URL}preview/", {"image": pk}) for pk in pks]
    assert [a.status_code for a in answers] == [400, 400]
    messages = [a.json()["image"][0].replace(str(pk), "ID") for a, pk in zip(answers, pks, strict=True)]
    assert messages[0] == messages[1] == 'Invalid pk "ID" - object does not exist.'


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "image"),
        ("image=abc", "image"),
        ("image={image}&image={image}", "image"),
        ("image={image}&target_groups=x", "target_groups"),
        ("image={image}&target_types=-1", "target_types"),
        ("image={image}&target_devices=0", "target_devices"),
        ("image={image}&color=red", "color"),
        ("image={image}" + "&target_types=1" * 101, "target_types"),
    ],
)
def test_bad_preview_parameters_are_400s_naming_them(acme_admin, image, query, parameter):
    response = api_client(acme_admin).get(f"{URL}preview/?{query.format(image=image.pk)}")
    assert response.status_code == 400, response.content
    assert parameter in response.json()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"color": "red"}, "color"),
        ({"waves": {"percent": 10}}, "waves"),
        ({"waves": [{"percent": 101}, {}]}, "waves"),
        ({"waves": [{"percent": "10"}, {}]}, "waves"),
        ({"waves": [{"percent": 10.001}, {}]}, "waves"),
        ({"waves": [{"percent": 60}, {"percent": 50}]}, "waves"),
        ({"waves": [{"size": 1}]}, "waves"),
        ({"waves": []}, "waves"),
        ({"name": 5}, "name"),
        ({"target_groups": ["1"]}, "target_groups"),
        ({"target_versions": [1]}, "target_versions"),
        ({"window_cron": "0 2 * * *"}, "__all__"),
        ({"window_timezone": "Mars/Base"}, "window_timezone"),
        ({"device_timeout_seconds": 5}, "device_timeout_seconds"),
    ],
)
def test_bad_create_input_is_a_400_naming_the_field(acme_admin, image, fields, field):
    response = api_client(acme_admin).post(URL, payload(image, **fields), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json() or (field == "__all__" and "window_cron" in str(response.json()))
    assert not Rollout.objects.exists()


def test_an_image_of_another_tenant_or_a_draft_image_is_refused(acme, acme_admin, globex, sensor):
    foreign = image_for(globex, do_create_device_type(manufacturer="G", model="1", actor=None, tenant=globex))
    unreleased = image_for(acme, sensor, release=False, version="3.0.0")
    client = api_client(acme_admin)
    for image in (foreign, unreleased):
        response = client.post(URL, payload(image), format="json")
        assert response.status_code == 400 and "image" in response.json(), response.content
    assert not Rollout.objects.exists()


@pytest.mark.parametrize(
    ("role", "scope", "plan_status"),
    [
        # A Standard user's write token passes the model check; the row is out of its reach
        # for a change, which this API answers 404 (tenants.api.permissions: row-level refusals).
        (Role.Kind.STANDARD, "write", 404),
        # A read token may change nothing at all: refused before any row is looked up.
        (Role.Kind.BUSINESS, "read", 403),
    ],
)
def test_other_roles_read_but_neither_create_nor_plan(acme, sensor, role, scope, plan_status, image):
    devices(acme, 3, device_type=sensor)
    rollout = draft(image)
    client = api_client(make_user(acme, role), scope=scope)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}{rollout.pk}/").status_code == 200
    assert client.get(f"{URL}preview/", {"image": image.pk}).status_code == 200
    assert client.post(URL, payload(image), format="json").status_code == 403
    assert client.post(f"{URL}{rollout.pk}/plan/").status_code == plan_status
    assert Rollout.objects.get().status == "draft"


def test_a_support_engineer_reads_but_neither_creates_nor_plans(acme, acme_admin, provider, image):
    rollout = draft(image)
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T-7", scope="write")
    client = verified_client(engineer)
    assert client.post("/support/enter/", {"secret": link}).status_code == 302
    assert client.get(URL).status_code == 200
    created = client.post(URL, payload(image), content_type="application/json")
    planned = client.post(f"{URL}{rollout.pk}/plan/", content_type="application/json")
    assert [created.status_code, planned.status_code] == [403, 403]
    assert Rollout.objects.get().status == "draft"


class TestRolloutIsolation(TenantIsolationChecks):
    endpoint = URL

    def make_object(self, tenant: Any) -> Rollout:
        kind = do_create_device_type(manufacturer="Maker", model="Iso", actor=None, tenant=tenant)
        return draft(image_for(tenant, kind))

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        kind = do_create_device_type(manufacturer="Maker", model="Own", actor=None, tenant=tenant)
        return payload(image_for(tenant, kind))

    foreign_keys = {
        "image": lambda tenant: image_for(
            tenant, do_create_device_type(manufacturer="Maker", model="FK", actor=None, tenant=tenant)
        ),
    }

    def test_foreign_rollout_cannot_be_planned(self, two_tenants: dict[str, Any]) -> None:
        foreign = two_tenants["foreign"]
        assert two_tenants["client"].post(f"{self.endpoint}{foreign.pk}/plan/").status_code == 404
        assert Rollout.objects.get(pk=foreign.pk).status == "draft"

    @pytest.mark.parametrize("action", ["start", "pause", "resume", "cancel", "retry", "advance"])
    def test_foreign_rollout_cannot_be_acted_on(self, two_tenants: dict[str, Any], action: str) -> None:
        foreign = two_tenants["foreign"]
        missing = Rollout.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1000
        answers = [two_tenants["client"].post(f"{self.endpoint}{pk}/{action}/") for pk in (foreign.pk, missing)]
        assert [a.status_code for a in answers] == [404, 404]
        assert answers[0].json() == answers[1].json()
        assert Rollout.objects.get(pk=foreign.pk).status == "draft"
        assert not AuditEntry.objects.filter(object_id=str(foreign.pk), event=f"firmware.rollout.{action}").exists()
