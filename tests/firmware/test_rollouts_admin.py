"""Cockpit: rollouts. The list with progress, the add form with its preview, the rollout page and its buttons,
the device page's firmware history; each for administrators, Standard and Business users and support."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from devices.models import Device, DeviceType
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.services import do_create_rollout, do_start_rollout, do_update_firmware_policy
from firmware.services.rollouts import run_planning
from tenants.models import Role
from tests.factories import grant, make_group, make_user
from tests.firmware.rollout_scene import in_wave, planned, spend_retries, walk, wave
from tests.firmware.test_rollout_planning import devices, image_for
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url, row_state
from tests.support.device_rows import make_type, messages_of

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

_seq = itertools.count(1)


def released_image(tenant: Any, device_type: DeviceType | None = None) -> FirmwareImage:
    return image_for(tenant, device_type or make_type(tenant), version=f"2.0.{next(_seq)}")


def draft(tenant: Any, image: FirmwareImage | None = None, **settings: Any) -> Rollout:
    image = image or released_image(tenant)
    return do_create_rollout(
        image=image, name=f"Rollout {next(_seq)}", waves=[{"percent": 10}, {}], actor=None, tenant=tenant, **settings
    )


def add_form(image: FirmwareImage, **fields: Any) -> dict[str, Any]:
    """A valid add-page POST: one canary wave of 2 devices, the rest in the last wave."""
    return {
        "image": image.pk,
        "name": "Spring update",
        "device_timeout_seconds": "3600",
        "max_retries": "2",
        "start_at_0": "",
        "start_at_1": "",
        "window_cron": "",
        "window_minutes": "",
        "window_timezone": "",
        "pace_per_minute": "",
        "target_devices": "",
        "wave0-size": "2",
        "wave0-unit": "count",
        "wave0-success_threshold": "95",
        "wave0-error_threshold": "5",
        "wave0-min_finished": "1",
        "wave0-soak_minutes": "60",
        "last-success_threshold": "95",
        "last-error_threshold": "5",
        "last-min_finished": "1",
        "last-soak_minutes": "60",
        **fields,
    }


def action_url(rollout: Rollout, action: str) -> str:
    return reverse("cockpit:firmware_rollout_action", args=(rollout.pk, action))


def preview_url() -> str:
    return reverse("cockpit:firmware_rollout_preview")


def progress_url(rollout: Rollout) -> str:
    return reverse("cockpit:firmware_rollout_progress", args=(rollout.pk,))


BUTTONS = ("plan", "start", "pause", "resume", "advance", "retry", "cancel")


def buttons(page: Any) -> set[str]:
    content = page.content.decode()
    return {name for name in BUTTONS if f'id="rollout-{name}"' in content}


@pytest.fixture
def image(acme: Any, sensor: DeviceType) -> FirmwareImage:
    return image_for(acme, sensor)


@pytest.fixture
def ready(image: FirmwareImage, sensor: DeviceType) -> Rollout:
    return planned(image, 6, device_type=sensor, waves=[{"count": 2}, {"count": 2}, {}])


# --- cross-tenant ----------------------------------------------------------------------------


class TestRolloutAdminIsolation(AdminIsolationChecks):
    model = Rollout
    foreign_keys = {"image": released_image}

    def make_object(self, tenant: Any) -> Rollout:
        return draft(tenant)

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return add_form(released_image(tenant))

    def search_term(self, obj: Any) -> str:
        return obj.name


def test_another_tenants_rollout_answers_404_on_buttons_progress_and_preview(acme_admin, globex, ready):
    foreign = planned(released_image(globex, dt := make_type(globex)), 3, device_type=dt)
    client = cockpit_client(acme_admin)
    before, trail = row_state(foreign), AuditEntry.objects.filter(tenant=globex).count()
    for action in BUTTONS:
        assert client.post(action_url(foreign, action)).status_code == 404, action
    assert client.get(progress_url(foreign)).status_code == 404
    answer = client.post(preview_url(), add_form(foreign.image))
    assert answer.status_code == 400 and "image" in answer.json()["errors"]
    assert row_state(foreign) == before and AuditEntry.objects.filter(tenant=globex).count() == trail
    # and the own one answers
    assert client.get(progress_url(ready)).status_code == 200


# --- the list --------------------------------------------------------------------------------


def test_list_shows_version_status_planned_and_progress_summed_over_waves(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    walk(in_wave(ready, 0), "succeeded")
    walk(in_wave(ready, 1, 1), "failed", error_code="flash")
    other = draft(ready.tenant)
    response = cockpit_client(acme_admin).get(admin_url(Rollout, "changelist"))
    assert response.status_code == 200
    assert changelist_pks(response) == {ready.pk, other.pk}
    content = response.content.decode()
    assert ready.image.version in content and "running" in content
    assert "2 of 6 succeeded, 1 failed" in content
    assert 'class="segment segment-succeeded"' in content
    assert "no devices" in content  # the draft has no targets yet


# --- the add page and its preview ----------------------------------------------------------------


def test_add_page_offers_released_images_and_the_wave_rows(acme, acme_admin, image, sensor):
    unreleased = image_for(acme, sensor, release=False, version="3.0.0")
    page = cockpit_client(acme_admin).get(admin_url(Rollout, "add"))
    assert page.status_code == 200
    choices = {str(pk) for pk, _ in page.context["adminform"].form.fields["image"].choices if pk}
    assert choices == {str(image.pk)} and str(unreleased.pk) not in choices
    content = page.content.decode()
    assert 'name="wave0-size"' in content and 'name="last-soak_minutes"' in content
    assert 'name="last-size"' not in content  # the last wave takes the rest
    assert 'id="rollout-preview"' in content and "cockpit/rollout_form.js" in content
    # Images are uploaded and released on their own pages: no add/change/delete/view links here.
    assert "add_id_image" not in content and "change_id_image" not in content and "view_id_image" not in content


def test_create_through_the_service_with_waves_and_targets(acme, acme_admin, image, sensor):
    group = make_group(acme, "Plant A")
    client = cockpit_client(acme_admin)
    data = add_form(
        image,
        target_groups=[group.pk],
        target_versions=[],
        **{
            "wave1-size": "40",
            "wave1-unit": "percent",
            "wave1-success_threshold": "90",
            "wave1-error_threshold": "5",
            "wave1-min_finished": "3",
            "wave1-soak_minutes": "30",
            "wave1-auto_advance": "on",
            "window_cron": "0 2 * * 1-5",
            "window_minutes": "120",
            "window_timezone": "Europe/Berlin",
            "pace_per_minute": "50",
        },
    )
    response = client.post(admin_url(Rollout, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    rollout = Rollout.objects.get()
    assert response["Location"] == object_url(rollout)
    assert (rollout.status, rollout.image, rollout.target_groups) == ("draft", image, [group.pk])
    assert (rollout.window_cron, rollout.window_minutes, rollout.pace_per_minute) == ("0 2 * * 1-5", 120, 50)
    waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
    sizes = [(w.count, w.percent, w.auto_advance) for w in waves]
    assert sizes == [(2, None, False), (None, 40, True), (None, None, False)]
    assert (waves[1].min_finished, waves[1].soak_seconds, waves[1].success_threshold) == (3, 1800, 90)
    entry = AuditEntry.objects.get(event="firmware.rollout.create")
    assert entry.actor == acme_admin and entry.object_pk == str(rollout.pk)
    assert any("created as a draft" in text for text in messages_of(response))


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"wave0-size": "70", "wave0-unit": "percent", "wave1-size": "50"}, None, "add up to 120"),
        ({"wave0-size": "", "wave0-auto_advance": "on"}, None, "Give this wave a size"),
        ({"wave0-size": "1.5", "wave0-unit": "count"}, None, "Some waves need fixing"),
        ({"wave0-error_threshold": "150"}, None, "Some waves need fixing"),
        ({"window_cron": "0 2 * * *"}, "window_minutes", "maintenance window"),
        ({"window_cron": "every night", "window_minutes": "60", "window_timezone": "UTC"}, "window_cron", "cron"),
        ({"window_timezone": "Mars/Olympus"}, "window_timezone", "time zone"),
        ({"target_devices": "NOPE-1 12345678"}, "target_devices", "NOPE-1"),
        ({"name": ""}, "name", "required"),
        ({"device_timeout_seconds": "5"}, "device_timeout_seconds", "60"),
    ],
)
def test_bad_input_is_a_clear_form_error_and_stores_nothing(acme_admin, image, fields, field, text):
    response = cockpit_client(acme_admin).post(admin_url(Rollout, "add"), add_form(image, **fields))
    assert response.status_code == 200
    form = response.context["adminform"].form
    errors = form.errors.get(field or "__all__", []) + [
        str(e) for row in [*form.wave_rows, form.last_wave] for errs in row.errors.values() for e in errs
    ]
    assert any(text in str(error) for error in errors), form.errors
    assert not Rollout.objects.exists() and not RolloutWave.objects.exists()
    assert not AuditEntry.objects.filter(event="firmware.rollout.create").exists()


def test_a_withdrawn_image_posted_anyway_is_refused_on_the_form(acme, acme_admin, image):
    from firmware.services import do_withdraw_firmware_image

    data = add_form(image)
    do_withdraw_firmware_image(image, actor=None)
    response = cockpit_client(acme_admin).post(admin_url(Rollout, "add"), data)
    assert response.status_code == 200 and "image" in response.context["adminform"].form.errors
    assert not Rollout.objects.exists()


def test_preview_counts_per_group_and_type_before_anything_is_saved(acme, acme_admin, image, sensor):
    plant_a, plant_b = make_group(acme, "Plant A"), make_group(acme, "Plant B")
    other_type = make_type(acme)
    devices(acme, 3, device_type=sensor, group=plant_a)
    devices(acme, 2, device_type=sensor, group=plant_b, version="0.9.0")
    devices(acme, 4, device_type=other_type, group=plant_a)  # the image does not fit them
    devices(acme, 1, device_type=sensor, group=plant_a, status=Device.Status.DECOMMISSIONED)
    client = cockpit_client(acme_admin)

    everything = client.post(preview_url(), add_form(image))
    assert everything.status_code == 200
    assert everything.json() == {
        "total": 5,
        "rows": [
            {"group": "Plant A", "type": str(sensor), "devices": 3},
            {"group": "Plant B", "type": str(sensor), "devices": 2},
        ],
    }
    narrowed = client.post(preview_url(), add_form(image, target_groups=[plant_b.pk], target_versions=["0.9.0"]))
    assert narrowed.json() == {"total": 2, "rows": [{"group": "Plant B", "type": str(sensor), "devices": 2}]}
    named = Device.objects.filter(group=plant_a).exclude(status="decommissioned").order_by("pk")[0]
    one = client.post(preview_url(), add_form(image, target_devices=f"{named.external_id}"))
    assert one.json()["total"] == 1
    # Nothing was saved, and invalid fields elsewhere do not stop the preview.
    assert client.post(preview_url(), add_form(image, name="", **{"wave0-size": ""})).json()["total"] == 5
    assert not Rollout.objects.exists()
    assert client.get(preview_url()).status_code == 405
    unknown = client.post(preview_url(), add_form(image, target_devices="GHOST"))
    assert unknown.status_code == 400 and "GHOST" in unknown.json()["errors"]["target_devices"][0]
    # The page shows the same counts when the form comes back with errors.
    page = client.post(admin_url(Rollout, "add"), add_form(image, name=""))
    assert page.context["preview"]["total"] == 5 and "5 devices reached" in page.content.decode()


# --- the rollout page and its buttons ------------------------------------------------------------


def test_page_shows_waves_counts_buttons_and_audit(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    walk(in_wave(ready, 0, 1), "succeeded")
    walk(in_wave(ready, 0, 1), "succeeded")
    page = cockpit_client(acme_admin).get(object_url(ready))
    assert page.status_code == 200
    rows = page.context["wave_rows"]
    assert [row["wave"].planned for row in rows] == [2, 2, 2]
    states = page.context["states"]
    assert rows[0]["counts"][states.index("succeeded")] == 1 and rows[0]["counts"][states.index("pending")] == 1
    assert buttons(page) == {"pause", "cancel"}
    content = page.content.decode()
    assert 'name="_save"' not in content and "1 of 2 succeeded" in content
    assert "firmware.rollout.start" in content and "firmware.rollout.plan" in content
    assert [entry["entry"].event for entry in page.context["rollout_audit"]][:1] == ["firmware.rollout.start"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("draft", {"plan", "cancel"}),
        ("ready", {"start", "cancel"}),
        ("running", {"pause", "cancel"}),
        ("paused", {"resume", "cancel"}),
        ("canceling", set()),
        ("canceled", set()),
        ("finished", set()),
        ("plan_failed", set()),
    ],
)
def test_buttons_follow_the_state_table(acme_admin, ready, status, expected):
    Rollout.objects.filter(pk=ready.pk).update(status=status)
    assert buttons(cockpit_client(acme_admin).get(object_url(ready))) == expected


def test_plan_start_pause_resume_cancel_through_the_buttons(acme, acme_admin, image, sensor):
    devices(acme, 5, device_type=sensor)
    rollout = draft(acme, image)
    client = cockpit_client(acme_admin)
    response = client.post(action_url(rollout, "plan"))
    assert response.status_code == 302 and response["Location"] == object_url(rollout)
    rollout.refresh_from_db()
    # Planning is a Celery job (queued after commit); run its work as the worker would.
    assert rollout.status == "planning"
    assert any("Planning has begun" in text for text in messages_of(response))
    assert "plan" not in buttons(client.get(object_url(rollout)))
    run_planning(rollout.pk)
    rollout.refresh_from_db()
    assert rollout.status == "ready" and rollout.planned_total == 5
    assert buttons(client.get(object_url(rollout))) == {"start", "cancel"}
    client.post(action_url(rollout, "start"))
    rollout.refresh_from_db()
    assert rollout.status == "running"
    paused = client.post(action_url(rollout, "pause"), {"reason": "Canaries look odd"})
    rollout.refresh_from_db()
    assert rollout.status == "paused" and rollout.status_reason == "Canaries look odd"
    assert any(text.startswith("Paused") for text in messages_of(paused))
    client.post(action_url(rollout, "resume"))
    rollout.refresh_from_db()
    assert rollout.status == "running"
    client.post(action_url(rollout, "cancel"))
    rollout.refresh_from_db()
    assert rollout.status in ("canceling", "canceled")
    for event in ("plan_requested", "start", "pause", "resume", "cancel"):
        entry = AuditEntry.objects.get(event=f"firmware.rollout.{event}")
        assert entry.actor == acme_admin and entry.object_pk == str(rollout.pk), event


def test_a_move_the_state_table_refuses_is_the_services_message(acme_admin, ready):
    client = cockpit_client(acme_admin)
    response = client.post(action_url(ready, "resume"))
    assert response.status_code == 302
    (text,) = messages_of(response)
    assert text.startswith("Resume: Rollout") and "ready" in text
    ready.refresh_from_db()
    assert ready.status == "ready"
    assert not AuditEntry.objects.filter(event="firmware.rollout.resume").exists()
    assert client.get(action_url(ready, "start")).status_code == 405
    assert client.post(action_url(ready, "explode")).status_code == 404


def test_retry_failed_and_advance(acme_admin, ready):
    client = cockpit_client(acme_admin)
    do_start_rollout(ready, actor=acme_admin)
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="active")
    walk(in_wave(ready, 0, 1), "succeeded")
    walk(in_wave(ready, 0).exclude(status="succeeded"), "failed", error_code="flash")
    spend_retries(ready, RolloutTarget.objects.filter(rollout=ready, status="failed"))
    assert "retry" in buttons(client.get(object_url(ready)))
    response = client.post(action_url(ready, "retry"))
    assert "1 failed devices will be offered the update again." in messages_of(response)
    assert RolloutTarget.objects.filter(rollout=ready, status="pending", attempts=0).count() == 5
    assert AuditEntry.objects.get(event="firmware.rollout.retry").additional_data["targets"] == 1

    refused = client.post(action_url(ready, "advance"))
    assert any("advanced from once it has succeeded" in t for t in messages_of(refused))
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="succeeded")
    assert "advance" in buttons(client.get(object_url(ready)))
    advanced = client.post(action_url(ready, "advance"))
    assert "Wave 2 started (2 devices)." in messages_of(advanced)
    assert wave(ready, 1).status == "active"
    assert AuditEntry.objects.get(event="firmware.rollout.advance").actor == acme_admin


def test_progress_endpoint_gives_the_fresh_waves_table(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    client = cockpit_client(acme_admin)
    first = client.get(progress_url(ready)).json()
    assert first["live"] is True and first["status"] == "running"
    walk(in_wave(ready, 0), "succeeded")
    second = client.get(progress_url(ready)).json()
    assert "2 of 2 succeeded" in second["html"] and "2 of 2 succeeded" not in first["html"]


# --- roles ----------------------------------------------------------------------------------------


def _reads_but_acts_not(client: Any, rollout: Rollout, image: FirmwareImage) -> None:
    assert rollout.pk in changelist_pks(client.get(admin_url(Rollout, "changelist")))
    page = client.get(object_url(rollout))
    assert page.status_code == 200 and buttons(page) == set()
    assert client.get(progress_url(rollout)).status_code == 200
    before, trail = row_state(rollout), AuditEntry.objects.filter(event__startswith="firmware.rollout.").count()
    for action in BUTTONS:
        assert client.post(action_url(rollout, action)).status_code == 403, action
    assert client.get(admin_url(Rollout, "add")).status_code == 403
    assert client.post(admin_url(Rollout, "add"), add_form(image)).status_code == 403
    assert client.post(preview_url(), add_form(image)).status_code == 403
    assert client.post(object_url(rollout), {"name": "x"}).status_code == 403
    assert client.post(object_url(rollout, "delete"), {"post": "yes"}).status_code == 403
    assert row_state(rollout) == before and Rollout.objects.count() == 1
    assert AuditEntry.objects.filter(event__startswith="firmware.rollout.").count() == trail


def test_standard_user_reads_but_acts_not_without_the_policy(acme, ready, image):
    _reads_but_acts_not(cockpit_client(make_user(acme, Role.Kind.STANDARD)), ready, image)


def test_business_user_reads_but_acts_not(acme, ready, image):
    _reads_but_acts_not(cockpit_client(make_user(acme, Role.Kind.BUSINESS)), ready, image)


def test_support_engineer_under_a_write_grant_reads_but_acts_not(ready, image, support_client):
    _reads_but_acts_not(support_client, ready, image)


def test_standard_user_with_the_policy_acts_on_rollouts_of_their_groups(acme, image, sensor):
    group, elsewhere = make_group(acme, "Plant A"), make_group(acme, "Plant B")
    mine = planned(image, 3, device_type=sensor, group=group)
    theirs = planned(image, 3, device_type=sensor, group=elsewhere)
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    user = make_user(acme, Role.Kind.STANDARD)
    grant(group, ["view", "change"], user=user)
    client = cockpit_client(user)
    assert buttons(client.get(object_url(mine))) == {"start", "cancel"}
    assert buttons(client.get(object_url(theirs))) == set()
    assert client.post(action_url(theirs, "start")).status_code == 403
    client.post(action_url(mine, "start"))
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("running", "ready")
    assert AuditEntry.objects.get(event="firmware.rollout.start").actor == user
    # They create rollouts of their own groups only (the service's rule, shown on the form).
    page = client.get(admin_url(Rollout, "add"))
    assert page.status_code == 200
    assert {g.pk for g in page.context["adminform"].form.fields["target_groups"].queryset} == {group.pk}
    fleet = client.post(admin_url(Rollout, "add"), add_form(image, name="Everything"))
    assert fleet.status_code == 200 and "target_groups" in fleet.context["adminform"].form.errors
    foreign = client.post(admin_url(Rollout, "add"), add_form(image, name="Theirs", target_groups=[elsewhere.pk]))
    assert foreign.status_code == 200 and "target_groups" in foreign.context["adminform"].form.errors
    created = client.post(admin_url(Rollout, "add"), add_form(image, name="Mine", target_groups=[group.pk]))
    assert created.status_code == 302
    assert Rollout.objects.get(name="Mine").created_by == user and Rollout.objects.count() == 3


# --- the device page's firmware history -------------------------------------------------------------


def test_device_page_lists_only_that_devices_targets_of_the_callers_tenant(
    acme, acme_admin, globex, ready, rows_past_the_constraints
):
    do_start_rollout(ready, actor=acme_admin)
    target, neighbour = in_wave(ready, 0).order_by("pk")
    walk(RolloutTarget.objects.filter(pk=target.pk), "failed", error_code="flash_error")
    device = target.device
    # A row of another tenant naming this device (what the tenant pin must hide, whatever the data says).
    foreign = planned(released_image(globex, dt := make_type(globex)), 1, device_type=dt)
    RolloutTarget.objects.create(
        tenant=globex, rollout=foreign, wave=wave(foreign, 1), device=device, status="succeeded", error_code="GLOBEX"
    )
    page = cockpit_client(acme_admin).get(admin_url(Device, "change", device.pk))
    assert page.status_code == 200
    sections = {s["key"]: s for s in page.context["device_sections"]}
    assert [t.pk for t in sections["firmware"]["context"]["targets"]] == [target.pk]
    content = page.content.decode()
    assert 'id="device-firmware"' in content and "Firmware history" in content
    assert ready.name in content and ready.image.version in content and "flash_error" in content
    assert "GLOBEX" not in content and object_url(foreign) not in content
    other = cockpit_client(acme_admin).get(admin_url(Device, "change", neighbour.device_id))
    assert "flash_error" not in other.content.decode()


def test_device_history_for_a_standard_user_and_another_tenant(acme, globex_admin, image, sensor):
    group = make_group(acme, "Plant A")
    rollout = planned(image, 2, device_type=sensor, group=group)
    device = RolloutTarget.objects.filter(rollout=rollout).order_by("pk")[0].device
    user = make_user(acme, Role.Kind.STANDARD)
    grant(group, ["view"], user=user)
    page = cockpit_client(user).get(admin_url(Device, "change", device.pk))
    assert page.status_code == 200 and rollout.name in page.content.decode()
    assert cockpit_client(globex_admin).get(admin_url(Device, "change", device.pk)).status_code == 404


def test_a_device_without_rollouts_says_so(acme_admin, acme, sensor):
    (device,) = devices(acme, 1, device_type=sensor)
    page = cockpit_client(acme_admin).get(admin_url(Device, "change", device.pk))
    assert "has not been part of a rollout" in page.content.decode()
