"""Staged rollouts: create one as a draft, then plan it (every matching device gets a wave).

Planning is set-based, as every big fan-out here (docs/architecture.md, "Jobs"): one
``INSERT … SELECT`` writes a target row for each matching device, whatever their number,
and the statement itself shuffles them over the waves, so no per-device row ever passes
through Python. The source of that SELECT is the SQL of an ordinary device queryset
(``firmware.selectors.rollout_devices``): tenant pin, the planner's rights, image types
and the target spec are the same Django filters every other read uses, not a second
hand-written copy of the access rules.

The shuffle is ``md5(seed || ':' || device id)``: deterministic for a rollout (its seed is
stored), unrelated to ids, sites or uplinks, so no wave is one site's devices. Wave
sizes are computed in Python from the count of matching devices, just before the insert
in the same transaction; a device registered in between lands in the last wave (the
``ELSE`` of the assignment), so every device matched by the insert gets exactly one wave.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

import audit
from cot.exceptions import Conflict
from devices.models import DeviceGroup
from firmware import counters, locks, selectors
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutWave
from firmware.states import ROLLOUT, require_move, sources_of
from tenants.access import access_by_id, require_caller, tenant_for_add
from tenants.models import Action, Tenant, User

WAVE_FIELDS = frozenset(
    {"percent", "count", "success_threshold", "error_threshold", "min_finished", "soak_seconds", "auto_advance"}
)
MAX_WAVES = 20


@transaction.atomic
def do_create_rollout(
    *,
    image: FirmwareImage,
    name: str,
    waves: Sequence[dict[str, Any]],
    target_groups: Sequence[int] = (),
    target_types: Sequence[int] = (),
    target_versions: Sequence[str] = (),
    target_devices: Sequence[int] = (),
    device_timeout_seconds: int = 3600,
    max_retries: int = 2,
    start_at: datetime | None = None,
    window_cron: str = "",
    window_minutes: int | None = None,
    window_timezone: str = "",
    pace_per_minute: int | None = None,
    actor: User | None,
    tenant: Tenant | None = None,
) -> Rollout:
    """A draft rollout of a released image of the caller's tenant, with its waves.

    Each wave dict has a ``percent`` or a ``count`` (the first wave is the canaries) and
    optionally its thresholds, ``min_finished``, ``soak_seconds`` and ``auto_advance``;
    the last wave takes every device the others left, so it may name no size at all.
    """
    tenant = tenant_for_add(actor, Rollout, tenant)
    if image.tenant_id != tenant.pk:
        raise ValidationError({"image": "Unknown image."})  # as for an id that exists nowhere
    # Locked until commit: a withdrawal waits, then sees this rollout and refuses.
    image = FirmwareImage.objects.select_for_update().get(pk=image.pk)
    if image.status != FirmwareImage.Status.RELEASED:
        raise ValidationError({"image": f"Image {image.version} is {image.status}; roll out a released image."})
    rollout = Rollout(
        tenant=tenant,
        name=name,
        image=image,
        target_groups=_ids(target_groups, "target_groups"),
        target_types=_ids(target_types, "target_types"),
        target_versions=list(dict.fromkeys(str(v) for v in target_versions)),
        target_devices=_ids(target_devices, "target_devices"),
        device_timeout_seconds=device_timeout_seconds,
        max_retries=max_retries,
        start_at=start_at,
        window_cron=window_cron,
        window_minutes=window_minutes,
        window_timezone=window_timezone,
        pace_per_minute=pace_per_minute,
        created_by=actor,
    )
    rollout.full_clean()
    if actor is not None and not require_caller(actor).is_admin:
        _require_own_groups(actor, rollout.target_groups)
    wave_rows = _waves(waves, tenant)
    rollout.save()
    for wave in wave_rows:
        wave.rollout = rollout
    RolloutWave.objects.bulk_create(wave_rows)
    audit.record(
        "firmware.rollout.create",
        tenant=tenant,
        target=rollout,
        data={
            "image": image.pk,
            "version": image.version,
            "waves": [_size_label(w) for w in wave_rows],
            "target_groups": rollout.target_groups,
            "target_types": rollout.target_types,
            "target_versions": rollout.target_versions,
            "target_devices": len(rollout.target_devices),
        },
        actor=actor,
    )
    return rollout


def _require_own_groups(actor: User, groups: Sequence[int]) -> None:
    """A Standard user (allowed by the policy) rolls out to device groups only, each granting them ``change``."""
    if not groups:
        message = "Name the device groups to roll out to (only administrators roll out to the whole fleet)."
        raise ValidationError({"target_groups": message})
    changeable = set(
        DeviceGroup.objects.restrict(actor, Action.CHANGE).filter(pk__in=groups).values_list("pk", flat=True)
    )
    if missing := [pk for pk in groups if pk not in changeable]:
        raise ValidationError(
            {"target_groups": f"You may not change the device groups {', '.join(map(str, missing))}."}
        )


def _ids(values: Sequence[Any], field: str) -> list[int]:
    try:
        return list(dict.fromkeys(int(v) for v in values))
    except (TypeError, ValueError):
        raise ValidationError({field: "Give ids (whole numbers)."}) from None


def _waves(waves: Sequence[dict[str, Any]], tenant: Tenant) -> list[RolloutWave]:
    """Validated, unsaved waves: sizes positive, percentages at most 100 together, the last takes the rest."""
    if not waves:
        raise ValidationError({"waves": "Give at least one wave."})
    if len(waves) > MAX_WAVES:
        raise ValidationError({"waves": f"Give at most {MAX_WAVES} waves."})
    rows: list[RolloutWave] = []
    percent_total = Decimal(0)
    for index, spec in enumerate(waves):
        where = f"Wave {index + 1}"
        unknown = sorted(set(spec) - WAVE_FIELDS)
        if unknown:
            raise ValidationError({"waves": f"{where}: unknown fields {', '.join(unknown)}."})
        percent, count = spec.get("percent"), spec.get("count")
        last = index == len(waves) - 1
        if percent is not None and count is not None:
            raise ValidationError({"waves": f"{where}: give a percent or a count, not both."})
        if percent is None and count is None and not last:
            raise ValidationError({"waves": f"{where}: give a percent or a count (only the last wave takes the rest)."})
        if percent is not None:
            try:
                percent = Decimal(str(percent))
            except InvalidOperation:
                raise ValidationError({"waves": f"{where}: the percent must be a number."}) from None
            if not percent > 0:
                raise ValidationError({"waves": f"{where}: the percent must be positive."})
            percent_total += percent
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValidationError({"waves": f"{where}: the count must be a positive whole number."})
        wave = RolloutWave(tenant=tenant, index=index, **{**spec, "percent": percent})
        try:
            wave.full_clean(exclude=["rollout"], validate_constraints=False)
        except ValidationError as error:
            raise ValidationError({"waves": f"{where}: {'; '.join(error.messages)}"}) from None
        rows.append(wave)
    if percent_total > 100:
        raise ValidationError({"waves": f"The waves' percentages add up to {percent_total}; at most 100."})
    return rows


def _size_label(wave: RolloutWave) -> str:
    if wave.count is not None:
        return str(wave.count)
    return f"{wave.percent}%" if wave.percent is not None else "rest"


def wave_sizes(waves: Sequence[RolloutWave], total: int) -> list[int]:
    """How many of ``total`` devices each wave gets, in order.

    A percentage is rounded up, so a canary wave of 1 % is never empty while there are
    devices; counts are taken as they are; nothing goes beyond ``total``; the last wave
    takes the rest (10 devices and 10 %, 40 %, rest: 1, 4, 5).
    """
    sizes: list[int] = []
    left = total
    for wave in waves[:-1]:
        wanted = wave.count if wave.count is not None else math.ceil(Decimal(total) * (wave.percent or 0) / 100)
        size = min(int(wanted), left)
        sizes.append(size)
        left -= size
    return [*sizes, left]


#: the Celery task that plans (firmware.tasks); sent by name, so services import no task module
PLAN_TASK = "firmware.tasks.plan_rollout"


def do_plan_rollout(rollout: Rollout, *, actor: User | None) -> Rollout:
    """draft → planning, and queue the planning job after commit; the rollout, now ``planning``.

    The job (``firmware.tasks.plan_rollout`` → ``run_planning``) assigns every device the
    rollout reaches and the actor may change to a wave and moves the rollout to ``ready``,
    or to ``plan_failed`` with a reason. The actor is stored as ``planned_by``: the job
    selects devices with their rights. Planning a rollout that is not a draft is a ``Conflict``.
    Tests and commands that need ``ready`` at once call ``run_planning(rollout.pk)`` next.
    """
    with transaction.atomic():
        if actor is not None:
            rollout = access_by_id(actor, Rollout, rollout.pk, Action.CHANGE)
        _move(rollout, Rollout.Status.PLANNING, planned_by=actor, planning_since=timezone.now(), plan_attempts=1)
        rollout.refresh_from_db()
        audit.record(
            "firmware.rollout.plan_requested",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status},
            actor=actor,
        )
        queue_planning(rollout.pk)
    return rollout


def queue_planning(rollout_id: int) -> None:
    """Send the planning job once the current transaction commits (never for a rolled-back request)."""
    from celery import current_app

    transaction.on_commit(lambda: current_app.send_task(PLAN_TASK, args=[rollout_id]))


def run_planning(rollout_id: int) -> Rollout | None:
    """Plan a rollout in ``planning``: one INSERT … SELECT and the move to ``ready``, in one transaction.

    Idempotent and safe to run twice at once: the whole transaction holds the rollout's
    planning advisory lock (a second run that finds it taken returns ``None`` at once; the
    holder finishes or, if its worker died, PostgreSQL releases the lock and the watchdog
    queues the job again), and a rollout no longer in ``planning`` is returned unchanged.
    As the targets and the move to ``ready`` commit together, a worker that dies mid-way
    leaves nothing behind. This is also the synchronous path (tests, commands).
    """
    with transaction.atomic():
        if not locks.try_xact_lock(locks.PLANNING, rollout_id):
            return None
        rollout = (
            Rollout.objects.select_for_update(of=("self",))
            .select_related("planned_by")
            .filter(pk=rollout_id)
            .order_by()
            .first()
        )
        if rollout is None or rollout.status != Rollout.Status.PLANNING:
            return rollout
        actor = rollout.planned_by
        # Locked until commit: the image cannot be withdrawn while its targets are written.
        image = FirmwareImage.objects.select_for_update().get(pk=rollout.image_id)
        if image.status != FirmwareImage.Status.RELEASED:
            return _plan_failed(rollout, f"Image {image.version} is {image.status}; only a released image rolls out.")
        waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
        devices = selectors.rollout_devices(
            tenant=rollout.tenant_id,
            image=image,
            target_groups=rollout.target_groups,
            target_types=rollout.target_types,
            target_versions=rollout.target_versions,
            target_devices=rollout.target_devices,
            actor=actor,
        )
        total = devices.count()
        if total == 0:
            return _plan_failed(rollout, "No device you may change matches the targets and the image's types.")
        planned = _insert_targets(rollout, waves, wave_sizes(waves, total), devices)
        counters.add_planned(rollout.tenant_id, planned)
        for wave in waves:
            wave.planned = planned.get(wave.pk, 0)
        RolloutWave.objects.bulk_update(waves, ["planned"])
        planned_total = sum(planned.values())
        if planned_total == 0:  # every match vanished between the count and the insert
            return _plan_failed(rollout, "No device you may change matches the targets and the image's types.")
        _move(rollout, Rollout.Status.READY, planned_total=planned_total, planned_at=timezone.now())
        if planned_total >= ANALYZE_AFTER:
            transaction.on_commit(_analyze_targets)
        rollout.refresh_from_db()
        audit.record(
            "firmware.rollout.plan",
            tenant=rollout.tenant_id,
            target=rollout,
            data={
                "status": rollout.status,
                "devices": planned_total,
                "waves": [w.planned for w in waves],
                "planned_by": rollout.planned_by_id,
                "attempt": rollout.plan_attempts,
            },
        )
    return rollout


#: a planning that wrote at least this many targets refreshes the table's statistics (``_analyze_targets``)
ANALYZE_AFTER = 10_000


def _analyze_targets() -> None:
    """``ANALYZE`` the targets table once a big planning has committed.

    Autovacuum notices a bulk insert only on its next round (up to a minute, longer on a
    big table); until then the planner works from statistics that predate the new rows and
    may read a polling device's targets through the tenant index (every target of the
    tenant, growing with it) instead of the device's. ANALYZE reads a bounded sample
    (30,000 rows by default) whatever the table's size, so the first polls plan well.
    """
    with connection.cursor() as cursor:
        # Through a function of the owner's: only a table's owner may ANALYZE it (migration 0006).
        cursor.execute("SELECT cot_analyze_rollout_targets()")


def _insert_targets(
    rollout: Rollout, waves: Sequence[RolloutWave], sizes: Sequence[int], devices: Any
) -> dict[int, int]:
    """One INSERT … SELECT of every device in ``devices``, shuffled over ``waves``; planned count per wave id.

    ``row_number()`` over the shuffle key numbers the devices 1…n; the CASE gives the
    first ``sizes[0]`` of them the first wave and so on, everything after the last
    boundary the last wave. The RETURNING rows are counted inside the statement, so one
    row per wave comes back, not one per device.

    The shuffle key is compared byte-wise (``COLLATE "C"``: the same order for hex digits
    as any collation, without locale-aware comparisons), and the rows are inserted in device
    order, so the indexes on the device grow at their right edge instead of at random
    places: at a million devices this took planning from 2.7 to about 1.2 times a bare
    ``INSERT … SELECT`` of the same rows (docs/performance.md).
    """
    source, source_params = devices.values_list("pk", flat=True).query.sql_with_params()
    whens: list[str] = []
    case_params: list[Any] = []
    bound = 0
    for wave, size in zip(waves[:-1], sizes[:-1], strict=True):
        bound += size
        whens.append("WHEN shuffled.position <= %s THEN %s")
        case_params += [bound, wave.pk]
    wave_expr = f"CASE {' '.join(whens)} ELSE %s END" if whens else "%s"
    case_params.append(waves[-1].pk)
    table = connection.ops.quote_name(RolloutTarget._meta.db_table)
    sql = f"""
        WITH inserted AS (
            INSERT INTO {table}
                (tenant_id, rollout_id, wave_id, device_id, status, attempts, error_code, reported_version)
            SELECT %s, %s, {wave_expr}, shuffled.device_id, %s, 0, '', ''
            FROM (
                SELECT candidate.device_id,
                       row_number() OVER (
                           ORDER BY md5(%s || ':' || candidate.device_id::text) COLLATE "C", candidate.device_id
                       ) AS position
                FROM ({source}) AS candidate (device_id)
            ) AS shuffled
            ORDER BY shuffled.device_id
            RETURNING wave_id
        )
        SELECT wave_id, count(*) FROM inserted GROUP BY wave_id
    """  # noqa: S608 (only table names and placeholders are formatted in; values are parameters)
    params = [rollout.tenant_id, rollout.pk, *case_params, RolloutTarget.Status.PENDING, rollout.seed, *source_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(cursor.fetchall())


def _move(rollout: Rollout, to: str, **fields: Any) -> None:
    """The guarded UPDATE of a state change: only from a state the table lists, or ``Conflict``."""
    moved = Rollout.objects.filter(pk=rollout.pk, status__in=sources_of(ROLLOUT, to)).update(status=to, **fields)
    if not moved:
        current = Rollout.objects.filter(pk=rollout.pk).values_list("status", flat=True).first()
        require_move(ROLLOUT, str(current), to, f"Rollout {rollout.name}")
        raise Conflict(f"Rollout {rollout.name} changed meanwhile; reload it.")


def _plan_failed(rollout: Rollout, reason: str) -> Rollout:
    _move(rollout, Rollout.Status.PLAN_FAILED, status_reason=reason, planned_at=timezone.now())
    rollout.refresh_from_db()
    audit.record(
        "firmware.rollout.plan",
        tenant=rollout.tenant_id,
        target=rollout,
        data={"status": rollout.status, "devices": 0, "reason": reason, "planned_by": rollout.planned_by_id},
    )
    return rollout
