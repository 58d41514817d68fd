"""Planned rollouts for the action, API and engine tests, and a way to play devices' reports.

Device reports are simulated with ``firmware.counters.move_targets`` directly (the device
endpoints are built elsewhere): a report is one guarded move of one target.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from devices.models import DeviceGroup, DeviceType
from firmware import counters
from firmware.counters import Sql
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.services import do_create_rollout, do_plan_rollout
from firmware.services.rollouts import run_planning
from tests.firmware.test_rollout_planning import devices

# The path a target takes to success, in order.
PATH = ["offered", "downloading", "downloaded", "verified", "installing", "succeeded"]


def planned(
    image: FirmwareImage,
    n: int,
    *,
    device_type: DeviceType,
    waves: list[dict[str, Any]] | None = None,
    group: DeviceGroup | None = None,
    actor: Any = None,
    **settings: Any,
) -> Rollout:
    """A ready rollout of ``image`` over ``n`` fresh devices (planned synchronously, as the job would)."""
    devices(image.tenant, n, device_type=device_type, group=group)
    rollout = do_create_rollout(
        image=image,
        name="Spring update",
        waves=waves or [{"count": 2}, {}],
        actor=None,
        tenant=image.tenant,
        target_groups=[group.pk] if group is not None else [],
        **settings,
    )
    do_plan_rollout(rollout, actor=actor)
    run_planning(rollout.pk)  # the job's work, synchronously
    rollout.refresh_from_db()
    assert rollout.status == Rollout.Status.READY, rollout.status_reason
    return rollout


def wave(rollout: Rollout, index: int) -> RolloutWave:
    return RolloutWave.objects.get(rollout=rollout, index=index)


def report(targets: Any, to: str, **columns: Any) -> int:
    """Devices report ``to`` for ``targets`` (a queryset): the guarded move a device report makes."""
    now = timezone.now()
    if to == "offered":
        columns = {"attempts": Sql("attempts + 1"), "offered_at": now, **columns}
    if to == "downloading":
        columns = {"started_at": now, **columns}
    if to in ("succeeded", "failed", "timed_out", "rejected"):
        columns = {"finished_at": now, **columns}
    return counters.move_targets(targets, to, changed_at=now, **columns)


def walk(targets: Any, until: str, **columns: Any) -> None:
    """Move ``targets`` along the success path up to ``until`` (``failed`` leaves from installing)."""
    ids = list(targets.values_list("pk", flat=True))
    for state in PATH:
        if state == "succeeded" and until != "succeeded":
            break
        report(RolloutTarget.objects.filter(pk__in=ids), state)
        if state == until:
            return
    if until in ("failed", "timed_out"):
        report(RolloutTarget.objects.filter(pk__in=ids), until, **columns)


def in_wave(rollout: Rollout, index: int, n: int | None = None) -> Any:
    """The first ``n`` targets of a wave (all without ``n``), as a queryset of ids."""
    ids = RolloutTarget.objects.filter(wave=wave(rollout, index)).order_by("pk").values_list("pk", flat=True)
    return RolloutTarget.objects.filter(pk__in=list(ids if n is None else ids[:n]))


def states(rollout: Rollout) -> dict[str, int]:
    """How many of the rollout's targets are in each state."""
    result: dict[str, int] = {}
    for status in RolloutTarget.objects.filter(rollout=rollout).values_list("status", flat=True):
        result[status] = result.get(status, 0) + 1
    return result


def counters_exact(rollout: Rollout) -> bool:
    """Whether the sharded counters say what the targets say."""
    ids = list(RolloutWave.objects.filter(rollout=rollout).values_list("pk", flat=True))
    return counters.counts(ids) == counters.recount(ids)


def spend_retries(rollout: Rollout, targets: Any) -> None:
    """Mark targets as having used every retry (attempts above the rollout's ``max_retries``)."""
    targets.update(attempts=rollout.max_retries + 1)
