"""The rollout state machines: tables in code that the models' choices and the guarded UPDATEs follow."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest

from cot.exceptions import Conflict
from firmware import states
from firmware.models import Rollout, RolloutTarget, RolloutWave

MODELS: dict[str, Any] = {"rollout": Rollout, "wave": RolloutWave, "target": RolloutTarget}

# The moves the issue lists, each of which must be allowed.
LISTED = {
    "rollout": [
        ("draft", "planning"),
        ("planning", "ready"),
        ("planning", "plan_failed"),
        ("ready", "running"),
        ("running", "paused"),
        ("paused", "running"),
        ("running", "finished"),
        ("running", "canceling"),
        ("paused", "canceling"),
        ("canceling", "canceled"),
    ],
    "wave": [("pending", "active"), ("active", "soaking"), ("soaking", "succeeded"), ("soaking", "halted")],
    "target": [
        ("pending", "offered"),
        ("offered", "downloading"),
        ("downloading", "downloaded"),
        ("downloaded", "verified"),
        ("verified", "installing"),
        ("installing", "succeeded"),
        ("installing", "failed"),
        ("downloading", "timed_out"),
        ("offered", "rejected"),
        ("pending", "canceled"),
        ("pending", "skipped"),
    ],
}
FORBIDDEN = {
    "rollout": [("draft", "running"), ("ready", "planning"), ("finished", "running"), ("canceled", "draft")],
    "wave": [("pending", "succeeded"), ("succeeded", "active"), ("halted", "active")],
    "target": [
        ("pending", "succeeded"),
        ("installing", "canceled"),
        ("succeeded", "pending"),
        ("offered", "installing"),
    ],
}


@pytest.mark.parametrize("name", sorted(states.MACHINES))
def test_every_listed_move_is_allowed(name):
    machine = states.MACHINES[name]
    for source, to in LISTED[name]:
        assert states.can_move(machine, source, to), (name, source, to)
        states.require_move(machine, source, to)


@pytest.mark.parametrize("name", sorted(states.MACHINES))
def test_forbidden_moves_are_refused_naming_both_states(name):
    machine = states.MACHINES[name]
    for source, to in FORBIDDEN[name]:
        assert not states.can_move(machine, source, to)
        with pytest.raises(Conflict) as refused:
            states.require_move(machine, source, to, "The row")
        assert source in refused.value.message and to in refused.value.message


def test_unknown_states_never_move():
    assert not states.can_move(states.ROLLOUT, "nonsense", "draft")
    assert not states.can_move(states.ROLLOUT, "draft", "nonsense")


@pytest.mark.parametrize("name", sorted(states.MACHINES))
def test_tables_are_closed_and_equal_the_models_choices(name):
    machine = states.MACHINES[name]
    for nexts in machine.values():
        assert nexts <= machine.keys()
    assert set(machine) == set(MODELS[name].Status.values)
    assert states.INITIAL[name] == MODELS[name]._meta.get_field("status").default


def test_terminal_states_have_no_exits():
    assert {"finished", "canceled", "plan_failed"} == states.ROLLOUT_TERMINAL
    assert {"succeeded", "halted"} == states.WAVE_TERMINAL
    assert {"succeeded", "rejected", "canceled", "skipped"} == states.TARGET_TERMINAL
    for machine in states.MACHINES.values():
        for state in states.terminal(machine):
            assert not any(states.can_move(machine, state, to) for to in machine)


def test_failed_targets_leave_only_for_a_retry():
    assert states.TARGET["failed"] == {"pending"} and states.TARGET["timed_out"] == {"pending"}


@pytest.mark.parametrize("name", sorted(states.MACHINES))
def test_every_state_is_reachable_from_the_initial_state(name):
    machine = states.MACHINES[name]
    seen = {states.INITIAL[name]}
    queue = deque(seen)
    while queue:
        for to in machine[queue.popleft()]:
            if to not in seen:
                seen.add(to)
                queue.append(to)
    assert seen == set(machine)


def test_sources_of_is_the_guard_of_an_update():
    assert states.sources_of(states.ROLLOUT, "planning") == {"draft"}
    assert states.sources_of(states.ROLLOUT, "canceling") == {"running", "paused"}
    assert states.sources_of(states.TARGET, "pending") == {"failed", "timed_out"}
    for machine in states.MACHINES.values():
        for to in machine:
            assert all(states.can_move(machine, source, to) for source in states.sources_of(machine, to))
