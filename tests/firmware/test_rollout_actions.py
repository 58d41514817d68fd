"""Start, pause, resume, cancel, retry failed and advance: access, guarded moves, set-based target moves, audit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.http import Http404

from audit.models import AuditEntry
from cot.exceptions import Conflict
from devices.models import DeviceType
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.services import (
    do_advance_wave,
    do_cancel_rollout,
    do_create_rollout,
    do_pause_rollout,
    do_resume_rollout,
    do_retry_failed_targets,
    do_start_rollout,
    do_update_firmware_policy,
)
from tenants.models import Action, Role
from tests.factories import grant, make_group, make_user
from tests.firmware.rollout_scene import counters_exact, in_wave, planned, report, spend_retries, states, walk, wave
from tests.firmware.test_rollout_planning import image_for

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


@pytest.fixture
def image(acme: Any, sensor: DeviceType) -> FirmwareImage:
    return image_for(acme, sensor)


@pytest.fixture
def ready(image: FirmwareImage, sensor: DeviceType) -> Rollout:
    return planned(image, 6, device_type=sensor, waves=[{"count": 2}, {"count": 2}, {}])


def events(rollout: Rollout, event: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(event=event, object_id=str(rollout.pk)))


def test_start_pause_resume_walk_the_state_table_and_are_audited(acme_admin, ready):
    started = do_start_rollout(ready, actor=acme_admin)
    assert started.status == "running" and started.started_at is not None
    paused = do_pause_rollout(started, actor=acme_admin, reason="Canaries look odd")
    assert paused.status == "paused" and paused.status_reason == "Canaries look odd"
    resumed = do_resume_rollout(paused, actor=acme_admin)
    assert resumed.status == "running" and resumed.status_reason == ""
    for event in ("start", "pause", "resume"):
        (entry,) = events(ready, f"firmware.rollout.{event}")
        assert entry.actor == acme_admin and entry.tenant_id == ready.tenant_id
    assert events(ready, "firmware.rollout.pause")[0].additional_data["reason"] == "Canaries look odd"
    assert events(ready, "firmware.rollout.resume")[0].additional_data["paused_because"] == "Canaries look odd"


def test_a_pause_without_reason_names_who_paused(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    assert do_pause_rollout(ready, actor=acme_admin).status_reason == f"Paused by {acme_admin.email}."


@pytest.mark.parametrize(
    ("action", "status"),
    [
        (do_start_rollout, "draft"),
        (do_start_rollout, "running"),
        (do_start_rollout, "paused"),
        (do_pause_rollout, "ready"),
        (do_pause_rollout, "paused"),
        (do_resume_rollout, "running"),
        (do_resume_rollout, "ready"),
        (do_cancel_rollout, "canceling"),
        (do_cancel_rollout, "canceled"),
        (do_cancel_rollout, "finished"),
        (do_cancel_rollout, "planning"),
        (do_retry_failed_targets, "ready"),
        (do_retry_failed_targets, "finished"),
        (do_advance_wave, "paused"),
    ],
)
def test_illegal_moves_are_conflicts_that_change_and_audit_nothing(acme_admin, ready, action, status):
    Rollout.objects.filter(pk=ready.pk).update(status=status)
    before = AuditEntry.objects.count()
    with pytest.raises(Conflict) as raised:
        action(ready, actor=acme_admin)
    assert status in str(raised.value.message)
    assert Rollout.objects.get(pk=ready.pk).status == status
    assert AuditEntry.objects.count() == before


def test_canceling_a_ready_rollout_cancels_it_at_once(acme_admin, ready):
    canceled = do_cancel_rollout(ready, actor=acme_admin)
    assert canceled.status == "canceled" and canceled.finished_at is not None
    assert states(ready) == {"canceled": 6}
    assert set(RolloutWave.objects.filter(rollout=ready).values_list("status", flat=True)) == {"halted"}
    assert counters_exact(ready)
    (entry,) = events(ready, "firmware.rollout.cancel")
    assert entry.additional_data == {"status": "canceled", "withdrawn": 6, "halted_waves": 3}


def test_a_draft_is_canceled_at_once(acme_admin, image):
    draft = do_create_rollout(image=image, name="x", waves=[{}], actor=acme_admin)
    assert do_cancel_rollout(draft, actor=acme_admin).status == "canceled"


def test_canceling_a_running_rollout_withdraws_all_but_installing_devices(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="succeeded")
    RolloutWave.objects.filter(pk=wave(ready, 1).pk).update(status="active")
    first = in_wave(ready, 0)
    walk(first, "succeeded")
    second = list(in_wave(ready, 1).values_list("pk", flat=True))
    walk(RolloutTarget.objects.filter(pk=second[0]), "installing")
    walk(RolloutTarget.objects.filter(pk=second[1]), "downloaded")
    canceling = do_cancel_rollout(ready, actor=acme_admin)
    assert canceling.status == "canceling" and canceling.finished_at is None
    assert states(ready) == {"succeeded": 2, "installing": 1, "canceled": 3}
    assert RolloutTarget.objects.get(pk=second[0]).status == "installing"  # never interrupted
    assert [w.status for w in RolloutWave.objects.filter(rollout=ready).order_by("index")] == [
        "succeeded",
        "halted",
        "halted",
    ]
    assert counters_exact(ready)
    assert events(ready, "firmware.rollout.cancel")[0].additional_data["withdrawn"] == 3


def test_retry_failed_moves_only_targets_whose_retries_are_spent(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="active")
    spent, fresh = in_wave(ready, 0).values_list("pk", flat=True)
    walk(RolloutTarget.objects.filter(pk=spent), "failed", error_code="flash_error")
    walk(RolloutTarget.objects.filter(pk=fresh), "timed_out")
    spend_retries(ready, RolloutTarget.objects.filter(pk=spent))
    assert do_retry_failed_targets(ready, actor=acme_admin) == 1
    retried = RolloutTarget.objects.get(pk=spent)
    assert (retried.status, retried.attempts, retried.error_code, retried.started_at) == ("pending", 0, "", None)
    assert RolloutTarget.objects.get(pk=fresh).status == "timed_out"  # the engine's to retry
    assert counters_exact(ready)
    (entry,) = events(ready, "firmware.rollout.retry")
    assert entry.additional_data["targets"] == 1 and entry.actor == acme_admin
    do_pause_rollout(ready, actor=acme_admin)
    assert do_retry_failed_targets(ready, actor=acme_admin) == 0  # a paused rollout retries too


def test_advance_activates_the_next_wave_only_after_the_current_one_succeeded(acme_admin, ready):
    do_start_rollout(ready, actor=acme_admin)
    with pytest.raises(Conflict, match="not begun"):
        do_advance_wave(ready, actor=acme_admin)
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="soaking")
    with pytest.raises(Conflict, match="soaking"):
        do_advance_wave(ready, actor=acme_admin)
    RolloutWave.objects.filter(pk=wave(ready, 0).pk).update(status="succeeded")
    advanced = do_advance_wave(ready, actor=acme_admin)
    assert advanced.index == 1 and advanced.status == "active" and advanced.started_at is not None
    assert wave(ready, 2).status == "pending"
    (entry,) = events(ready, "firmware.rollout.advance")
    assert entry.additional_data == {"wave": 1, "planned": 2}
    RolloutWave.objects.filter(rollout=ready).update(status="succeeded")
    with pytest.raises(Conflict, match="last wave"):
        do_advance_wave(ready, actor=acme_admin)


def test_another_tenants_rollout_is_404_for_every_action(acme_admin, globex_admin, ready):
    actions: list[Callable[..., Any]] = [
        do_start_rollout,
        do_pause_rollout,
        do_resume_rollout,
        do_cancel_rollout,
        do_retry_failed_targets,
        do_advance_wave,
    ]
    for action in actions:
        with pytest.raises(Http404):
            action(ready, actor=globex_admin)
    assert Rollout.objects.get(pk=ready.pk).status == "ready"
    assert not AuditEntry.objects.filter(event__startswith="firmware.rollout.", actor=globex_admin).exists()


@pytest.fixture
def grouped(acme: Any, image: FirmwareImage, sensor: DeviceType) -> dict[str, Any]:
    """A rollout on north, one on south, one on both, one on the fleet; a Standard user who may change north."""
    north, south = make_group(acme, "north"), make_group(acme, "south")
    standard = make_user(acme, Role.Kind.STANDARD)
    grant(north, [Action.VIEW, Action.CHANGE], user=standard)
    grant(south, [Action.VIEW], user=standard)
    scene = {"standard": standard, "north": north, "south": south}
    scene["in_north"] = planned(image, 2, device_type=sensor, group=north, waves=[{}])
    scene["in_south"] = planned(image, 2, device_type=sensor, group=south, waves=[{}])
    both = planned(image, 0, device_type=sensor, waves=[{}])  # planned over the whole fleet, then narrowed
    Rollout.objects.filter(pk=both.pk).update(target_groups=[north.pk, south.pk])
    scene["both"] = both
    scene["fleet"] = planned(image, 0, device_type=sensor, waves=[{}])
    return scene


def test_standard_users_act_only_by_policy_and_on_every_targeted_group(acme, sensor, grouped):
    standard = grouped["standard"]
    with pytest.raises(Http404):  # the policy is off by default
        do_start_rollout(grouped["in_north"], actor=standard)
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    started = do_start_rollout(grouped["in_north"], actor=standard)
    assert started.status == "running"
    assert events(started, "firmware.rollout.start")[0].actor == standard
    assert do_pause_rollout(started, actor=standard).status == "paused"
    assert do_cancel_rollout(started, actor=standard).status == "canceling"
    # View only on south; one of two groups; no group at all (the whole fleet): not theirs.
    for name in ("in_south", "both", "fleet"):
        with pytest.raises(Http404):
            do_start_rollout(grouped[name], actor=standard)
        assert Rollout.objects.get(pk=grouped[name].pk).status == "ready"
    # Read-only Business users never act, even with change granted on the group.
    business = make_user(acme, Role.Kind.BUSINESS)
    grant(grouped["north"], [Action.VIEW, Action.CHANGE], user=business)
    other = planned(grouped["in_north"].image, 1, device_type=sensor, waves=[{}])
    Rollout.objects.filter(pk=other.pk).update(target_groups=[grouped["north"].pk])
    with pytest.raises(Http404):
        do_start_rollout(other, actor=business)
    assert do_start_rollout(other, actor=standard).status == "running"


def test_rights_granted_through_the_role_count_as_well(acme, grouped):
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    user = make_user(acme, Role.Kind.STANDARD)
    grant(grouped["south"], [Action.VIEW, Action.CHANGE], role=user.role)
    assert do_start_rollout(grouped["in_south"], actor=user).status == "running"
    with pytest.raises(Http404):
        do_start_rollout(grouped["in_north"], actor=user)


def test_reads_are_unchanged_for_standard_users(acme, grouped):
    standard = grouped["standard"]
    assert Rollout.objects.restrict(standard, Action.VIEW).count() == 4
    assert Rollout.objects.restrict(standard, Action.CHANGE).count() == 0
    assert Rollout.objects.restrict(standard, Action.DELETE).count() == 0
    do_update_firmware_policy({"standard_users_roll_out": True}, actor=None, tenant=acme)
    assert list(Rollout.objects.restrict(standard, Action.CHANGE)) == [grouped["in_north"]]
    assert Rollout.objects.restrict(standard, Action.DELETE).count() == 0


def test_report_helper_moves_a_target_once(acme_admin, ready):
    """Sanity of the scene: a duplicate report changes nothing twice."""
    target = RolloutTarget.objects.filter(rollout=ready)[:1].get()
    assert report(RolloutTarget.objects.filter(pk=target.pk), "offered") == 1
    assert report(RolloutTarget.objects.filter(pk=target.pk), "offered") == 0
    assert RolloutTarget.objects.get(pk=target.pk).attempts == 1
