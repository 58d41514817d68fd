"""Planning a rollout: one INSERT … SELECT shuffles every device the planner may change over the waves."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from cot.database.scope import statement_of
from cot.exceptions import Conflict
from devices.models import Device, DeviceGroup, DeviceType
from devices.services.registry import do_create_device_type, do_update_device
from firmware import selectors
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.services import (
    do_create_rollout,
    do_plan_rollout,
    do_release_firmware_image,
    do_update_firmware_policy,
    do_upload_firmware_image,
)
from firmware.services.rollouts import run_planning
from tenants.models import Action, Role
from tests.factories import grant, make_device, make_group, make_user

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

THREE_WAVES = [{"percent": 10}, {"percent": 40}, {}]
_serial = itertools.count(1)


def image_for(tenant: Any, device_type: DeviceType, *, release: bool = True, version: str = "2.0.0") -> FirmwareImage:
    content = f"firmware {version} for {device_type.pk}".encode()
    image = do_upload_firmware_image(
        file=SimpleUploadedFile("fw.bin", content),
        sha256=hashlib.sha256(content).hexdigest(),
        version=version,
        device_types=[device_type],
        actor=None,
        tenant=tenant,
    )
    if release:
        do_update_firmware_policy({"require_signatures": False}, actor=None, tenant=tenant)
        image = do_release_firmware_image(image, actor=None)
    return image


def devices(
    tenant: Any,
    n: int,
    *,
    device_type: DeviceType | None,
    group: DeviceGroup | None = None,
    status: str = Device.Status.ACTIVE,
    version: str = "1.0.0",
) -> list[Device]:
    """``n`` devices written in one statement (the registration flow per device would take minutes for thousands)."""
    return Device.objects.bulk_create(
        Device(
            tenant=tenant,
            external_id=f"BULK-{next(_serial):07d}",
            type=device_type,
            group=group,
            status=status,
            firmware_version=version,
        )
        for _ in range(n)
    )


def rollout(image: FirmwareImage, actor: Any, waves: list[dict[str, Any]] | None = None, **targets: Any) -> Rollout:
    return do_create_rollout(
        image=image, name="Spring update", waves=THREE_WAVES if waves is None else waves, actor=actor, **targets
    )


def plan(r: Rollout, actor: Any) -> Rollout:
    """Plan as the API does (draft → planning, job queued), then run the job's work synchronously."""
    requested = do_plan_rollout(r, actor=actor)
    assert requested.status == Rollout.Status.PLANNING and requested.planned_by == actor
    done = run_planning(requested.pk)
    assert done is not None
    return done


def assignment(r: Rollout) -> dict[int, int]:
    """``{device id: wave index}`` of a planned rollout."""
    return dict(RolloutTarget.objects.filter(rollout=r).values_list("device_id", "wave__index"))


@pytest.fixture
def image(acme: Any, sensor: DeviceType) -> FirmwareImage:
    return image_for(acme, sensor)


def test_every_matching_device_is_planned_exactly_once(acme, acme_admin, sensor, image):
    fleet = devices(acme, 30, device_type=sensor)
    r = plan(rollout(image, acme_admin), actor=acme_admin)
    assert r.status == Rollout.Status.READY and r.planned_total == 30
    planned = list(RolloutTarget.objects.filter(rollout=r).values_list("device_id", flat=True))
    assert sorted(planned) == sorted(d.pk for d in fleet)
    target = RolloutTarget.objects.filter(rollout=r).first()
    assert target is not None and target.tenant_id == acme.pk and target.status == "pending" and target.attempts == 0
    entry = AuditEntry.objects.get(event="firmware.rollout.plan")
    assert entry.additional_data["devices"] == 30 and entry.additional_data["planned_by"] == acme_admin.pk
    assert AuditEntry.objects.get(event="firmware.rollout.plan_requested", object_id=r.pk).actor == acme_admin
    assert AuditEntry.objects.filter(event="firmware.rollout.create", object_id=r.pk).exists()


def test_wave_sizes_follow_the_spec_and_the_last_wave_takes_the_rest(acme, acme_admin, sensor, image):
    devices(acme, 10, device_type=sensor)
    by_percent = plan(rollout(image, acme_admin), actor=acme_admin)
    by_count = plan(
        rollout(image, acme_admin, waves=[{"count": 3}, {"count": 2, "auto_advance": True}, {"percent": 5}]),
        actor=acme_admin,
    )
    for r, expected in ((by_percent, [1, 4, 5]), (by_count, [3, 2, 5])):
        waves = list(RolloutWave.objects.filter(rollout=r).order_by("index"))
        assert [w.planned for w in waves] == expected
        assert [RolloutTarget.objects.filter(wave=w).count() for w in waves] == expected
        assert all(w.tenant_id == acme.pk and w.status == "pending" for w in waves)


def test_waves_are_validated(acme_admin, image):
    bad: list[list[dict[str, Any]]] = [
        [],
        [{"percent": 60}, {"percent": 50}],
        [{"count": 0}, {}],
        [{"percent": 0}, {}],
        [{"percent": 10, "count": 3}, {}],
        [{}, {}],
        [{"percent": 10, "colour": "red"}, {}],
        [{"percent": 10, "error_threshold": 101}, {}],
    ]
    for waves in bad:
        with pytest.raises(ValidationError):
            rollout(image, acme_admin, waves=waves)
    assert not Rollout.objects.exists()


def test_settings_are_stored_and_validated_for_shape(acme_admin, image):
    r = rollout(
        image,
        acme_admin,
        window_cron="0 2 * * 1-5",
        window_minutes=120,
        window_timezone="Europe/Berlin",
        pace_per_minute=50,
        device_timeout_seconds=600,
        max_retries=3,
    )
    r.refresh_from_db()
    assert (r.window_cron, r.window_minutes, r.window_timezone, r.pace_per_minute) == (
        "0 2 * * 1-5",
        120,
        "Europe/Berlin",
        50,
    )
    for bad in (
        {"window_cron": "every night", "window_minutes": 60, "window_timezone": "UTC"},
        {"window_cron": "0 2 * * *", "window_minutes": 60, "window_timezone": "Mars/Olympus"},
        {"window_cron": "0 2 * * *"},
    ):
        with pytest.raises(ValidationError):
            rollout(image, acme_admin, **bad)


def test_the_shuffle_is_deterministic_and_not_by_id(acme, acme_admin, sensor, image):
    fleet = sorted(d.pk for d in devices(acme, 200, device_type=sensor))
    first = plan(rollout(image, acme_admin), actor=acme_admin)
    again = rollout(image, acme_admin)
    Rollout.objects.filter(pk=again.pk).update(seed=first.seed)
    other_seed = rollout(image, acme_admin)
    plan(again, actor=acme_admin)
    plan(other_seed, actor=acme_admin)

    assert assignment(first) == assignment(again)
    assert assignment(first) != assignment(other_seed)
    canaries = sorted(device for device, wave in assignment(first).items() if wave == 0)
    assert len(canaries) == 20
    assert canaries != fleet[:20] and canaries != fleet[-20:]
    # Spread over the fleet, not one block of consecutive ids (one site's, one uplink's).
    assert any(pk < fleet[100] for pk in canaries) and any(pk >= fleet[100] for pk in canaries)


def test_targets_narrow_by_group_type_version_and_explicit_list(acme, acme_admin, sensor, image):
    group_a, group_b = make_group(acme, "A"), make_group(acme, "B")
    in_a = devices(acme, 3, device_type=sensor, group=group_a)
    devices(acme, 4, device_type=sensor, group=group_b)
    old = devices(acme, 2, device_type=sensor, version="0.9.0")
    r = plan(rollout(image, acme_admin, target_groups=[group_a.pk]), actor=acme_admin)
    assert set(assignment(r)) == {d.pk for d in in_a}
    r = plan(rollout(image, acme_admin, target_versions=["0.9.0"]), actor=acme_admin)
    assert set(assignment(r)) == {d.pk for d in old}
    r = plan(
        rollout(image, acme_admin, target_devices=[in_a[0].pk, old[0].pk], target_groups=[group_a.pk]),
        actor=acme_admin,
    )
    assert set(assignment(r)) == {in_a[0].pk}
    r = plan(rollout(image, acme_admin, target_types=[sensor.pk]), actor=acme_admin)
    assert r.planned_total == 9


def test_only_devices_the_planner_may_change(acme, acme_admin, sensor, image):
    group_a, group_b = make_group(acme, "A"), make_group(acme, "B")
    in_a = devices(acme, 3, device_type=sensor, group=group_a)
    devices(acme, 3, device_type=sensor, group=group_b)
    standard = make_user(acme, Role.Kind.STANDARD)
    grant(group_a, [Action.VIEW, Action.CHANGE], user=standard)
    grant(group_b, [Action.VIEW], user=standard)

    # The planning source applies the planner's rights: change on A, only view on B.
    reachable = selectors.rollout_devices(tenant=acme, image=image, actor=standard)
    assert set(reachable.values_list("pk", flat=True)) == {d.pk for d in in_a}
    assert selectors.rollout_devices(tenant=acme, image=image, actor=acme_admin).count() == 6
    preview = selectors.rollout_preview(reachable)
    assert preview == [{"group": group_a.pk, "type": sensor.pk, "devices": 3}]

    # Only administrators create and plan rollouts at all.
    with pytest.raises(PermissionDenied):
        rollout(image, standard)
    r = rollout(image, acme_admin)
    with pytest.raises(Http404):
        plan(r, actor=standard)
    assert Rollout.objects.get(pk=r.pk).status == Rollout.Status.DRAFT


def test_other_tenants_devices_are_never_planned(acme, acme_admin, globex, sensor, image, rows_past_the_constraints):
    theirs = devices(globex, 3, device_type=sensor)  # even of acme's type (as a forged row would be)
    foreign_group = make_group(globex)
    ours = devices(acme, 1, device_type=sensor)
    listed = [d.pk for d in theirs] + [ours[0].pk]
    r = plan(rollout(image, acme_admin, target_devices=listed), actor=acme_admin)
    assert set(assignment(r)) == {ours[0].pk}
    r = plan(rollout(image, None, tenant=acme), actor=None)  # the platform: the whole tenant
    assert set(assignment(r)) == {ours[0].pk}
    r = plan(rollout(image, acme_admin, target_groups=[foreign_group.pk]), actor=acme_admin)
    assert r.status == Rollout.Status.PLAN_FAILED


def test_wrong_types_and_decommissioned_devices_are_excluded(acme, acme_admin, sensor, image):
    gateway = do_create_device_type(manufacturer="ACME", model="Gateway", actor=None, tenant=acme)
    fitting = devices(acme, 2, device_type=sensor)
    devices(acme, 2, device_type=gateway)
    devices(acme, 2, device_type=None)
    devices(acme, 2, device_type=sensor, status=Device.Status.DECOMMISSIONED)
    registered, _ = make_device(acme)
    do_update_device(registered, {"type": sensor}, actor=None)
    r = plan(rollout(image, acme_admin, target_types=[gateway.pk, sensor.pk]), actor=acme_admin)
    assert set(assignment(r)) == {d.pk for d in fitting} | {registered.pk}


def test_an_unreleased_or_foreign_image_is_refused(acme, acme_admin, globex, sensor):
    draft = image_for(acme, sensor, release=False)
    with pytest.raises(ValidationError, match="released"):
        rollout(draft, acme_admin)
    foreign = image_for(globex, do_create_device_type(manufacturer="G", model="X", actor=None, tenant=globex))
    with pytest.raises(ValidationError, match="Unknown image"):
        rollout(foreign, acme_admin)
    assert not Rollout.objects.exists()


def test_an_image_withdrawn_before_planning_fails_the_plan(acme, acme_admin, sensor, image):
    devices(acme, 3, device_type=sensor)
    r = rollout(image, acme_admin)
    # The withdraw service refuses while the draft exists (test_image_in_rollout); planning
    # still checks the image itself, should a row say withdrawn some other way.
    FirmwareImage.objects.filter(pk=image.pk).update(status=FirmwareImage.Status.WITHDRAWN)
    r = plan(r, actor=acme_admin)
    assert r.status == Rollout.Status.PLAN_FAILED and "withdrawn" in r.status_reason
    assert not RolloutTarget.objects.exists()


def test_nothing_matching_fails_the_plan_with_a_reason(acme, acme_admin, sensor, image):
    devices(acme, 3, device_type=sensor, version="1.0.0")
    r = plan(rollout(image, acme_admin, target_versions=["9.9.9"]), actor=acme_admin)
    assert r.status == Rollout.Status.PLAN_FAILED and "No device" in r.status_reason
    assert r.planned_total == 0 and not RolloutTarget.objects.exists()
    assert AuditEntry.objects.get(event="firmware.rollout.plan").additional_data["reason"] == r.status_reason


def test_planning_twice_is_a_conflict(acme, acme_admin, sensor, image):
    devices(acme, 3, device_type=sensor)
    r = plan(rollout(image, acme_admin), actor=acme_admin)
    with pytest.raises(Conflict) as refused:
        plan(r, actor=acme_admin)
    assert "ready" in refused.value.message and "planning" in refused.value.message
    assert RolloutTarget.objects.filter(rollout=r).count() == 3


def _plan_queries(r: Rollout, actor: Any) -> list[str]:
    do_plan_rollout(r, actor=actor)
    with CaptureQueriesContext(connection) as captured:
        run_planning(r.pk)  # the job's work
    return [statement_of(q["sql"]) for q in captured.captured_queries]


def test_planning_is_one_insert_whatever_the_number_of_devices(acme, acme_admin, sensor, image):
    small_group, big_group = make_group(acme, "small"), make_group(acme, "big")
    devices(acme, 20, device_type=sensor, group=small_group)
    devices(acme, 2000, device_type=sensor, group=big_group)
    small = rollout(image, acme_admin, target_groups=[small_group.pk])
    big = rollout(image, acme_admin, target_groups=[big_group.pk])

    small_queries = _plan_queries(small, acme_admin)
    big_queries = _plan_queries(big, acme_admin)

    assert RolloutTarget.objects.filter(rollout=big).count() == 2000
    assert len(big_queries) == len(small_queries) < 20
    inserts = [sql for sql in big_queries if 'INSERT INTO "firmware_rollouttarget"' in sql]
    assert len(inserts) == 1 and "SELECT" in inserts[0].split("INSERT", 1)[1]
    assert [w.planned for w in RolloutWave.objects.filter(rollout=big).order_by("index")] == [200, 800, 1000]
