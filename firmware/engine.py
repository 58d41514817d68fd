"""The rollout engine: what happens between the operator's actions and the devices' reports.

Run by Celery beat (``firmware.tasks``, schedule in ``cot/settings.py``); every function
here is idempotent, keeps its state in the database and may run on several workers and
hosts at once:

- ``evaluate_rollouts`` (every few seconds): one transaction per rollout that is
  ``running`` (and whose ``start_at`` has passed) or ``canceling``, under that rollout's
  advisory lock (``firmware.locks.EVALUATION``; a second worker skips it) and its row lock
  (an operator's action in flight skips this tick). It retries failed targets whose
  retries are left, then judges the current wave from the sharded counters:
  a wave starts by changing one row; over its error threshold the rollout is paused
  within this tick and the tenant's administrators get a mail; at its success threshold
  it soaks; after ``soak_seconds`` it has succeeded; the next wave follows if the
  succeeded one has ``auto_advance`` (else ``do_advance_wave``); after the last one
  the pending targets left are skipped and the rollout has finished. A ``canceling``
  rollout becomes ``canceled`` once none of its devices is installing.
- ``sweep_timeouts``: targets whose ``started_at + device_timeout_seconds`` has passed
  become ``timed_out``, in bounded batches with ``FOR UPDATE SKIP LOCKED`` (a row a
  device report holds is left for the next batch).
- ``reconcile_counters``: recounts active and soaking waves from their targets.
- ``watchdog``: a rollout still ``planning`` after ``COT_ROLLOUT_PLANNING_STALE_SECONDS``
  whose planning lock nobody holds lost its worker: its job is queued again (logged,
  audited); after ``MAX_PLAN_ATTEMPTS`` it is ``plan_failed``.

Thresholds (percentages, judged once ``min_finished`` devices of the wave have finished,
or all of them if the wave has fewer): a device has *finished* when it succeeded, failed,
timed out or rejected the offer; the error share is failed + timed out + rejected over
finished; the success share is succeeded over the wave's devices (skipped and canceled
ones aside). A device counts as failed once its automatic retries are spent: retries run
before the judgement in the same tick.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

import audit
from firmware import counters, locks
from firmware.models import Rollout, RolloutTarget, RolloutWave
from firmware.services.rollout_actions import WITHDRAWN, activate_wave, move_rollout
from firmware.services.rollouts import queue_planning
from firmware.states import WAVE, sources_of
from tenants.models import Role, User

logger = logging.getLogger(__name__)

Status = RolloutTarget.Status
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT, Status.REJECTED)
FAILURES = (Status.FAILED, Status.TIMED_OUT, Status.REJECTED)
NOT_COUNTED = (Status.SKIPPED, Status.CANCELED)
#: states in which the per-device timeout runs (from the first progress report, ``started_at``)
TIMED = (Status.DOWNLOADING, Status.DOWNLOADED, Status.VERIFIED, Status.INSTALLING)
MAX_PLAN_ATTEMPTS = 5


# --- evaluation -----------------------------------------------------------------------------


def evaluate_rollouts() -> dict[str, int]:
    """One tick over every rollout that needs the engine; how many ended in each outcome."""
    now = timezone.now()
    due = Rollout.objects.filter(
        Q(status=Rollout.Status.RUNNING, start_at__isnull=True)
        | Q(status=Rollout.Status.RUNNING, start_at__lte=now)
        | Q(status=Rollout.Status.CANCELING)
    ).order_by("pk")
    outcomes: Counter[str] = Counter()
    for rollout_id in due.values_list("pk", flat=True):
        outcomes[evaluate_rollout(rollout_id)] += 1
    return dict(outcomes)


def evaluate_rollout(rollout_id: int) -> str:
    """One tick of one rollout, in one transaction; what it did (``busy`` when another holds it)."""
    with transaction.atomic():
        if not locks.try_xact_lock(locks.EVALUATION, rollout_id):
            return "busy"
        rollout = (
            Rollout.objects.select_for_update(skip_locked=True, of=("self",)).filter(pk=rollout_id).order_by().first()
        )
        if rollout is None:
            return "busy"
        now = timezone.now()
        if rollout.status == Rollout.Status.CANCELING:
            return _complete_cancel(rollout, now)
        if rollout.status != Rollout.Status.RUNNING or (rollout.start_at is not None and rollout.start_at > now):
            return "idle"
        retry_targets(rollout, now)
        outcome = "idle"
        waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
        # Several steps may follow in one tick (a wave of 0 s soak succeeds and the next starts).
        for _ in range(3 * len(waves) + 1):
            step = _step(rollout, waves, now)
            if step is None:
                break
            outcome = step
            if step in ("paused", "finished"):
                break
            waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
        return outcome


def _step(rollout: Rollout, waves: list[RolloutWave], now: datetime) -> str | None:
    """The one next thing to do for a running rollout, done; ``None`` when there is nothing to do now."""
    begun = [wave for wave in waves if wave.status != RolloutWave.Status.PENDING]
    upcoming = [wave for wave in waves if wave.status == RolloutWave.Status.PENDING]
    if not begun:
        _audit_wave(rollout, activate_wave(upcoming[0]), RolloutWave.Status.PENDING)
        return "wave_started"
    current = begun[-1]
    if current.status == RolloutWave.Status.SUCCEEDED:
        if not upcoming:
            _finish(rollout, now)
            return "finished"
        if not current.auto_advance:
            return None  # waits for do_advance_wave
        _audit_wave(rollout, activate_wave(upcoming[0]), RolloutWave.Status.PENDING)
        return "wave_started"
    if current.status not in (RolloutWave.Status.ACTIVE, RolloutWave.Status.SOAKING):
        return None  # halted: the rollout is being canceled
    figures = counters.counts([current.pk]).get(current.pk, {})
    population = sum(n for state, n in figures.items() if state not in NOT_COUNTED)
    finished = sum(figures.get(state, 0) for state in FINISHED)
    failures = sum(figures.get(state, 0) for state in FAILURES)
    judged = finished >= min(current.min_finished, population)
    if judged and finished and failures * 100 > current.error_threshold * finished:
        _pause_for_errors(rollout, current, failures=failures, finished=finished)
        return "paused"
    if current.status == RolloutWave.Status.ACTIVE:
        succeeded = figures.get(Status.SUCCEEDED, 0)
        if judged and succeeded * 100 >= current.success_threshold * population:
            _move_wave(rollout, current, RolloutWave.Status.SOAKING, soaking_since=now)
            return "soaking"
        return None
    soaked = current.soaking_since is None or current.soaking_since + timedelta(seconds=current.soak_seconds) <= now
    if soaked:
        _move_wave(rollout, current, RolloutWave.Status.SUCCEEDED, finished_at=now)
        return "wave_succeeded"
    return None


def _move_wave(rollout: Rollout, wave: RolloutWave, to: str, **fields: Any) -> None:
    """The guarded one-row UPDATE of a wave's state (the rollout's row lock makes it ours)."""
    moved = RolloutWave.objects.filter(pk=wave.pk, status__in=sources_of(WAVE, to)).update(status=to, **fields)
    if moved:
        source = wave.status
        wave.refresh_from_db()
        _audit_wave(rollout, wave, source)


def _audit_wave(rollout: Rollout, wave: RolloutWave, source: str) -> None:
    audit.record(
        "firmware.rollout.wave",
        tenant=rollout.tenant_id,
        target=rollout,
        data={"wave": wave.index, "from": source, "to": wave.status},
    )


def _pause_for_errors(rollout: Rollout, wave: RolloutWave, *, failures: int, finished: int) -> None:
    """running → paused with the reason, audited, and a mail to the tenant's administrators after commit."""
    share = failures * 100 / finished
    reason = (
        f"Wave {wave.index + 1}: {failures} of {finished} finished devices failed ({share:.0f} %), "
        f"above its error threshold of {wave.error_threshold} %."
    )
    move_rollout(rollout, Rollout.Status.PAUSED, source=Rollout.Status.RUNNING, status_reason=reason)
    audit.record(
        "firmware.rollout.pause",
        tenant=rollout.tenant_id,
        target=rollout,
        data={
            "status": rollout.status,
            "reason": reason,
            "automatic": True,
            "wave": wave.index,
            "failures": failures,
            "finished": finished,
            "error_threshold": wave.error_threshold,
        },
    )
    recipients = list(
        User.objects.filter(tenant=rollout.tenant_id, role__kind=Role.Kind.ADMINISTRATOR, is_active=True).values_list(
            "email", flat=True
        )
    )
    if recipients:
        subject = f"cot: rollout {rollout.name} paused"
        body = (
            f"The rollout {rollout.name!r} (image {rollout.image.version}) was paused automatically.\n\n"
            f"{reason}\n\n"
            "Look at the failed devices in the cockpit, then resume, retry failed devices or cancel the rollout."
        )
        transaction.on_commit(partial(send_mail, subject, body, None, recipients), robust=True)
    logger.warning("rollout %s paused: %s", rollout.pk, reason)


def _finish(rollout: Rollout, now: datetime) -> None:
    """The last wave succeeded: the pending targets left are skipped and the rollout has finished."""
    skipped = counters.move_targets(
        RolloutTarget.objects.filter(rollout=rollout, status=Status.PENDING),
        Status.SKIPPED,
        error_code="rollout_finished",
        changed_at=now,
    )
    move_rollout(rollout, Rollout.Status.FINISHED, finished_at=now)
    audit.record(
        "firmware.rollout.finish",
        tenant=rollout.tenant_id,
        target=rollout,
        data={"status": rollout.status, "skipped": skipped},
    )


def _complete_cancel(rollout: Rollout, now: datetime) -> str:
    """canceling → canceled once no device of the rollout is installing (stragglers withdrawn again)."""
    wave_ids = list(RolloutWave.objects.filter(rollout=rollout).values_list("pk", flat=True))
    stragglers = counters.move_targets(
        RolloutTarget.objects.filter(wave__in=wave_ids, status__in=WITHDRAWN),
        Status.CANCELED,
        changed_at=now,
        finished_at=now,
    )
    if stragglers:  # retried or offered in the moment of the cancel
        audit.record(
            "firmware.rollout.withdrawn",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "targets": stragglers},
        )
    if RolloutTarget.objects.filter(wave__in=wave_ids, status=Status.INSTALLING).exists():
        return "canceling"
    move_rollout(rollout, Rollout.Status.CANCELED, finished_at=now)
    audit.record("firmware.rollout.canceled", tenant=rollout.tenant_id, target=rollout, data={"status": "canceled"})
    return "canceled"


# --- retries and timeouts -------------------------------------------------------------------


def retry_targets(rollout: Rollout, now: datetime | None = None) -> int:
    """Failed and timed-out targets of a running rollout with retries left (attempts ≤ max_retries) → pending.

    Attempts are kept (the next offer counts one more); the timing of the failed attempt
    is cleared, so its timeout starts afresh. Rows a device report holds are left for
    the next tick.
    """
    now = now or timezone.now()
    retryable = RolloutTarget.objects.filter(
        rollout=rollout,
        status__in=[Status.FAILED, Status.TIMED_OUT],
        attempts__lte=rollout.max_retries,
    )
    retried = counters.move_targets(
        retryable,
        Status.PENDING,
        skip_locked=True,
        error_code="",
        progress=None,
        offered_at=None,
        started_at=None,
        finished_at=None,
        changed_at=now,
    )
    if retried:
        audit.record(
            "firmware.rollout.retry",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "targets": retried, "automatic": True},
        )
    return retried


def expired_targets(now: datetime) -> QuerySet[RolloutTarget]:
    """Targets past their per-device timeout: ``started_at + rollout.device_timeout_seconds`` before ``now``."""
    deadline = ExpressionWrapper(
        F("started_at") + F("rollout__device_timeout_seconds") * timedelta(seconds=1), output_field=DateTimeField()
    )
    return (
        RolloutTarget.objects.filter(status__in=TIMED, started_at__isnull=False)
        .alias(deadline=deadline)
        .filter(deadline__lt=now)
    )


def sweep_timeouts(*, batch: int | None = None, max_batches: int = 100) -> int:
    """Mark expired targets ``timed_out`` in batches of ``batch`` rows, each its own transaction; how many.

    ``SKIP LOCKED``: a row a device report holds right now is left for a later batch or
    sweep (its report may well be the one that saves it), so the sweep never waits on
    devices and several sweepers never take the same rows.
    """
    size = batch or int(settings.COT_ROLLOUT_SWEEP_BATCH)
    total = 0
    for _ in range(max_batches):
        now = timezone.now()
        with transaction.atomic():
            per_rollout = counters.move_targets_per_rollout(
                expired_targets(now),
                Status.TIMED_OUT,
                limit=size,
                skip_locked=True,
                error_code="timeout",
                finished_at=now,
                changed_at=now,
            )
            # One entry per rollout and batch (not per device: a million timeouts stay readable).
            rollouts = Rollout.objects.in_bulk([rollout_id for _, rollout_id in per_rollout])
            for (tenant_id, rollout_id), count in per_rollout.items():
                audit.record(
                    "firmware.rollout.timeouts", tenant=tenant_id, target=rollouts[rollout_id], data={"targets": count}
                )
        moved = sum(per_rollout.values())
        total += moved
        if moved < size:
            break
    if total:
        logger.info("rollout timeout sweep: %s targets timed out", total)
    return total


# --- reconciliation and the watchdog --------------------------------------------------------


def reconcile_counters() -> list[int]:
    """Recount the active and soaking waves from their targets; the ids of those that had drifted (logged)."""
    ids = RolloutWave.objects.filter(status__in=[RolloutWave.Status.ACTIVE, RolloutWave.Status.SOAKING]).values_list(
        "pk", flat=True
    )
    drifted = counters.reconcile(list(ids))
    if drifted:
        logger.warning("rollout counters drifted and were repaired for waves %s", drifted)
    return drifted


def watchdog(*, stale_after: timedelta | None = None) -> list[int]:
    """Queue planning again for rollouts whose planning worker vanished; the ids re-queued.

    A rollout is due when it is still ``planning``, was queued longer ago than
    ``stale_after`` (``COT_ROLLOUT_PLANNING_STALE_SECONDS``) and nobody holds its planning
    lock (a live planner holds it for its whole transaction; a dead worker's connection
    lost it). Each re-queue is logged and audited; after ``MAX_PLAN_ATTEMPTS`` the
    rollout is ``plan_failed``.
    """
    stale = stale_after if stale_after is not None else timedelta(seconds=settings.COT_ROLLOUT_PLANNING_STALE_SECONDS)
    cutoff = timezone.now() - stale
    requeued: list[int] = []
    queued_long_ago = Q(planning_since__lte=cutoff) | Q(planning_since__isnull=True)
    due = Rollout.objects.filter(queued_long_ago, status=Rollout.Status.PLANNING).order_by("pk")
    for rollout_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            if not locks.try_xact_lock(locks.PLANNING, rollout_id):
                continue  # a worker is planning it now
            rollout = (
                Rollout.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(queued_long_ago, pk=rollout_id, status=Rollout.Status.PLANNING)
                .order_by()
                .first()
            )
            if rollout is None:
                continue
            if rollout.plan_attempts >= MAX_PLAN_ATTEMPTS:
                reason = f"Planning did not complete in {rollout.plan_attempts} attempts; see the worker logs."
                move_rollout(rollout, Rollout.Status.PLAN_FAILED, status_reason=reason, planned_at=timezone.now())
                audit.record(
                    "firmware.rollout.plan",
                    tenant=rollout.tenant_id,
                    target=rollout,
                    data={"status": rollout.status, "devices": 0, "reason": reason},
                )
                logger.error("rollout %s: %s", rollout.pk, reason)
                continue
            Rollout.objects.filter(pk=rollout.pk).update(
                planning_since=timezone.now(), plan_attempts=F("plan_attempts") + 1
            )
            audit.record(
                "firmware.rollout.plan_requeued",
                tenant=rollout.tenant_id,
                target=rollout,
                data={
                    "attempt": rollout.plan_attempts + 1,
                    "queued_since": rollout.planning_since.isoformat() if rollout.planning_since else None,
                },
            )
            logger.warning(
                "rollout %s: planning queued since %s with no worker on it; queued again (attempt %s)",
                rollout.pk,
                rollout.planning_since,
                rollout.plan_attempts + 1,
            )
            queue_planning(rollout.pk)
            requeued.append(rollout.pk)
    return requeued
