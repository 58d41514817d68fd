"""What an operator does with a planned rollout: start, pause, resume, cancel, retry failed, advance.

Each ``do_*`` function checks access through ``tenants.access`` (``change`` on the
rollout: administrators, or Standard users by policy, see ``firmware.access``), moves the
rollout with one guarded UPDATE whose allowed sources come from ``firmware.states.ROLLOUT``
(a move the table does not list, or a row that changed meanwhile, is a ``Conflict``,
HTTP 409), moves targets set-based through ``firmware.counters.move_targets`` and records
the audit event, all in one transaction. ``actor=None`` is the platform (a command, the
engine). Nothing here loops over devices: a million targets move in one statement.

What happens next is the engine's (``firmware.engine``): it activates waves, judges
thresholds, finishes and completes cancels on its next tick.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

import audit
from cot.exceptions import Conflict
from firmware import counters
from firmware.models import Rollout, RolloutTarget, RolloutWave
from firmware.states import ROLLOUT, TARGET, WAVE, require_move, sources_of
from tenants.access import access_by_id
from tenants.models import Action, User

#: target states that are withdrawn when a running rollout is canceled (a flashing device is never interrupted)
WITHDRAWN = sorted(sources_of(TARGET, RolloutTarget.Status.CANCELED))
#: waves that halt when their rollout is canceled: those not begun, and the current one
HALTING = sorted(sources_of(WAVE, RolloutWave.Status.HALTED))


def checked(rollout: Rollout, actor: User | None) -> Rollout:
    """The rollout fresh from the database, if ``actor`` may change it (404 alike for missing and out of reach)."""
    if actor is None:
        return Rollout.objects.get(pk=rollout.pk)
    return access_by_id(actor, Rollout, rollout.pk, Action.CHANGE)


def move_rollout(rollout: Rollout, to: str, *, source: str | None = None, **fields: Any) -> None:
    """The guarded UPDATE of a rollout's state: only from a state ``ROLLOUT`` lists, or ``Conflict``.

    ``source`` narrows the move to one of them where the verb says where it starts
    (start leaves ``ready``, resume leaves ``paused``; both arrive at ``running``).
    """
    allowed = sources_of(ROLLOUT, to)
    if source is not None:
        allowed = allowed & {source}
    moved = Rollout.objects.filter(pk=rollout.pk, status__in=allowed).update(status=to, **fields)
    if not moved:
        current = Rollout.objects.filter(pk=rollout.pk).values_list("status", flat=True).first()
        require_move(ROLLOUT, str(current), to, f"Rollout {rollout.name}")
        if current not in allowed:
            raise Conflict(f"Rollout {rollout.name} is {current}; only a {source} rollout can become {to} this way.")
        raise Conflict(f"Rollout {rollout.name} changed meanwhile; reload it.")
    rollout.refresh_from_db()


def do_start_rollout(rollout: Rollout, *, actor: User | None) -> Rollout:
    """ready → running. The engine activates the first wave on its next tick once ``start_at`` has passed."""
    with transaction.atomic():
        rollout = checked(rollout, actor)
        move_rollout(
            rollout, Rollout.Status.RUNNING, source=Rollout.Status.READY, started_at=timezone.now(), status_reason=""
        )
        audit.record(
            "firmware.rollout.start",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "start_at": rollout.start_at.isoformat() if rollout.start_at else None},
            actor=actor,
        )
    return rollout


def do_pause_rollout(rollout: Rollout, *, actor: User | None, reason: str = "") -> Rollout:
    """running → paused: nothing new is offered; devices already updating finish and report."""
    reason = (reason or "").strip()[:500]
    with transaction.atomic():
        rollout = checked(rollout, actor)
        if not reason:
            reason = f"Paused by {actor.email}." if actor is not None else "Paused."
        move_rollout(rollout, Rollout.Status.PAUSED, status_reason=reason)
        audit.record(
            "firmware.rollout.pause",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "reason": reason},
            actor=actor,
        )
    return rollout


def do_resume_rollout(rollout: Rollout, *, actor: User | None) -> Rollout:
    """paused → running. The engine judges the thresholds again on its next tick (and pauses again if still over)."""
    with transaction.atomic():
        rollout = checked(rollout, actor)
        previous = rollout.status_reason
        move_rollout(rollout, Rollout.Status.RUNNING, source=Rollout.Status.PAUSED, status_reason="")
        audit.record(
            "firmware.rollout.resume",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "paused_because": previous},
            actor=actor,
        )
    return rollout


def do_cancel_rollout(rollout: Rollout, *, actor: User | None) -> Rollout:
    """draft/ready → canceled at once; running/paused → canceling, then canceled by the engine.

    Targets not yet installing (pending … verified) are withdrawn (``canceled``) now, and
    the waves not finished (pending, active, soaking) are ``halted``. A running rollout
    stays ``canceling`` while devices are installing; the engine completes the cancel
    once none is (a flashing device is never interrupted).
    """
    with transaction.atomic():
        rollout = checked(rollout, actor)
        at_once = rollout.status in (Rollout.Status.DRAFT, Rollout.Status.READY)
        to = Rollout.Status.CANCELED if at_once else Rollout.Status.CANCELING
        now = timezone.now()
        move_rollout(rollout, to, finished_at=now if at_once else None, status_reason="Canceled.")
        withdrawn = counters.move_targets(
            RolloutTarget.objects.filter(rollout=rollout, status__in=WITHDRAWN),
            RolloutTarget.Status.CANCELED,
            changed_at=now,
            finished_at=now,
        )
        halted = RolloutWave.objects.filter(rollout=rollout, status__in=HALTING).update(
            status=RolloutWave.Status.HALTED, finished_at=now
        )
        audit.record(
            "firmware.rollout.cancel",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "withdrawn": withdrawn, "halted_waves": halted},
            actor=actor,
        )
    return rollout


def do_retry_failed_targets(rollout: Rollout, *, actor: User | None) -> int:
    """Failed and timed-out targets whose automatic retries are spent → pending with attempts reset; how many.

    Those still within ``max_retries`` are the engine's to retry. Only a running or
    paused rollout retries (nothing would serve the targets of another).
    """
    with transaction.atomic():
        rollout = checked(rollout, actor)
        # Lock the row so that the state checked here holds until commit (a cancel waits).
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if rollout.status not in (Rollout.Status.RUNNING, Rollout.Status.PAUSED):
            raise Conflict(f"Rollout {rollout.name} is {rollout.status}; only a running or paused rollout retries.")
        spent = RolloutTarget.objects.filter(
            rollout=rollout,
            status__in=[RolloutTarget.Status.FAILED, RolloutTarget.Status.TIMED_OUT],
            attempts__gt=F("rollout__max_retries"),
        )
        moved = counters.move_targets(
            spent,
            RolloutTarget.Status.PENDING,
            attempts=0,
            error_code="",
            progress=None,
            offered_at=None,
            started_at=None,
            finished_at=None,
            changed_at=timezone.now(),
        )
        audit.record(
            "firmware.rollout.retry",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"status": rollout.status, "targets": moved},
            actor=actor,
        )
    return moved


def do_advance_wave(rollout: Rollout, *, actor: User | None) -> RolloutWave:
    """Activate the next wave of a running rollout whose current wave has succeeded and waits for a manual advance.

    The engine advances on its own after a wave with ``auto_advance``; after any other it
    waits for this. The first wave needs no advance (starting the rollout is the act).
    """
    with transaction.atomic():
        rollout = checked(rollout, actor)
        rollout = Rollout.objects.select_for_update().get(pk=rollout.pk)
        if rollout.status != Rollout.Status.RUNNING:
            raise Conflict(f"Rollout {rollout.name} is {rollout.status}; only a running rollout advances.")
        waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
        begun = [wave for wave in waves if wave.status != RolloutWave.Status.PENDING]
        upcoming = [wave for wave in waves if wave.status == RolloutWave.Status.PENDING]
        if not begun:
            raise Conflict(f"Rollout {rollout.name} has not begun its first wave yet; nothing to advance.")
        current = begun[-1]
        if current.status != RolloutWave.Status.SUCCEEDED:
            raise Conflict(f"{current} is {current.status}; a wave is advanced from once it has succeeded.")
        if not upcoming:
            raise Conflict(f"{current} was the last wave; the rollout finishes on its own.")
        wave = activate_wave(upcoming[0])
        audit.record(
            "firmware.rollout.advance",
            tenant=rollout.tenant_id,
            target=rollout,
            data={"wave": wave.index, "planned": wave.planned},
            actor=actor,
        )
    return wave


def activate_wave(wave: RolloutWave) -> RolloutWave:
    """pending → active by changing one row (devices of the wave find their work when they poll)."""
    moved = RolloutWave.objects.filter(pk=wave.pk, status__in=sources_of(WAVE, RolloutWave.Status.ACTIVE)).update(
        status=RolloutWave.Status.ACTIVE, started_at=timezone.now()
    )
    if not moved:
        current = RolloutWave.objects.filter(pk=wave.pk).values_list("status", flat=True).first()
        require_move(WAVE, str(current), RolloutWave.Status.ACTIVE, str(wave))
        raise Conflict(f"{wave} changed meanwhile; reload it.")
    wave.refresh_from_db()
    return wave
