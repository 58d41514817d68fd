"""The state machines of staged rollouts, as tables in code: ``{state: frozenset(next states)}``.

Why tables, and not methods scattered over services or a workflow library:

- one place to read. Every move a rollout, a wave or a device target can ever make is on
  this page; a reviewer checks the lifecycle here, not by reading every service;
- the guarded UPDATE uses the table. A state change is one statement,
  ``filter(pk=…, status__in=sources_of(MACHINE, to)).update(status=to)``, so of two
  concurrent writers one wins and the other sees a row count of 0 (``Conflict``); the
  set of states a move may start from comes from the same table that ``can_move`` reads,
  so the check and the write cannot disagree. For a million device targets the same
  filter moves them all in one set-based UPDATE;
- tests walk the tables (every listed move allowed, terminal states without exits, every
  state reachable), which a lifecycle spread over code cannot offer.

States are the plain strings the models' ``Status`` choices store (a test keeps the two
equal). Terminal states have no exits. ``failed`` and ``timed_out`` device targets are
not terminal: they leave only for ``pending`` again when the engine retries them (the
rollout's retry count), and once the retries are spent stay where they are until an
operator's "retry failed" (``do_retry_failed_targets``) sends them back with attempts reset.
"""

from __future__ import annotations

from collections.abc import Mapping

from cot.exceptions import Conflict

Machine = Mapping[str, frozenset[str]]

# draft → planning → ready → running ⇄ paused → finished; canceling → canceled; plan_failed.
# ``planning`` lasts while the planning job runs (firmware.tasks.plan_rollout). Start leaves
# ``ready`` only and resume ``paused`` only, though both arrive at ``running``. Nothing has
# been offered to a device before ``running``, so a draft or a ready rollout is canceled at
# once; a running or paused one passes through ``canceling``: its targets not yet installing
# are withdrawn at once, and the engine completes the cancel once no device is installing.
# The engine finishes a rollout when its last wave has succeeded (pending targets skipped).
ROLLOUT: Machine = {
    "draft": frozenset({"planning", "canceled"}),
    "planning": frozenset({"ready", "plan_failed"}),
    "plan_failed": frozenset(),
    "ready": frozenset({"running", "canceled"}),
    "running": frozenset({"paused", "finished", "canceling"}),
    "paused": frozenset({"running", "canceling"}),
    "canceling": frozenset({"canceled"}),
    "finished": frozenset(),
    "canceled": frozenset(),
}

# pending → active → soaking → succeeded | halted. A wave starts by changing its one row
# (the engine, or ``do_advance_wave`` after a wave without auto-advance); it soaks once its
# success threshold is reached and succeeds after its soak time. Crossing its error
# threshold does not move the wave: the engine pauses the *rollout* (``status_reason``
# says why) within one tick and mails the tenant's administrators, and the wave stays
# ``active`` or ``soaking``; resuming re-evaluates it (and pauses again at once if it is
# still over). ``halted`` is the wave state after a cancel: the pending waves and the
# current one (active or soaking) halt when their rollout is canceled.
WAVE: Machine = {
    "pending": frozenset({"active", "halted"}),
    "active": frozenset({"soaking", "halted"}),
    "soaking": frozenset({"succeeded", "halted"}),
    "succeeded": frozenset(),
    "halted": frozenset(),
}

# pending → offered → downloading → downloaded → verified → installing → succeeded, with
# failed, timed_out (``started_at`` + the rollout's device timeout passed: the engine's
# sweep), rejected (the device refused the offer), canceled (withdrawn before it began
# installing; a flashing device is never interrupted) and skipped (never offered: the
# rollout finished without it, or the image would roll the device back). failed and
# timed_out go back to pending while attempts ≤ max_retries (the engine), or by the
# operator's "retry failed" (attempts reset) once the retries are spent.
TARGET: Machine = {
    "pending": frozenset({"offered", "canceled", "skipped"}),
    "offered": frozenset({"downloading", "rejected", "failed", "timed_out", "canceled"}),
    "downloading": frozenset({"downloaded", "failed", "timed_out", "canceled"}),
    "downloaded": frozenset({"verified", "failed", "timed_out", "canceled"}),
    "verified": frozenset({"installing", "failed", "timed_out", "canceled"}),
    "installing": frozenset({"succeeded", "failed", "timed_out"}),
    "succeeded": frozenset(),
    "failed": frozenset({"pending"}),
    "timed_out": frozenset({"pending"}),
    "rejected": frozenset(),
    "canceled": frozenset(),
    "skipped": frozenset(),
}

INITIAL: dict[str, str] = {"rollout": "draft", "wave": "pending", "target": "pending"}
MACHINES: dict[str, Machine] = {"rollout": ROLLOUT, "wave": WAVE, "target": TARGET}


def terminal(machine: Machine) -> frozenset[str]:
    """The states of ``machine`` without exits."""
    return frozenset(state for state, nexts in machine.items() if not nexts)


ROLLOUT_TERMINAL = terminal(ROLLOUT)
WAVE_TERMINAL = terminal(WAVE)
TARGET_TERMINAL = terminal(TARGET)


def can_move(machine: Machine, source: str, to: str) -> bool:
    """Whether ``machine`` allows the move ``source`` → ``to`` (unknown states never move)."""
    return to in machine.get(source, frozenset())


def require_move(machine: Machine, source: str, to: str, what: str = "It") -> None:
    """Refuse (``Conflict``, HTTP 409) a move the table does not list, naming both states."""
    if not can_move(machine, source, to):
        raise Conflict(f"{what} is {source}; it cannot become {to}.")


def sources_of(machine: Machine, to: str) -> frozenset[str]:
    """The states from which ``to`` may be reached: the guard of the UPDATE that moves rows there."""
    return frozenset(state for state, nexts in machine.items() if to in nexts)
