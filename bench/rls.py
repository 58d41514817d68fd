"""Row-level security on and off, on the same data in the same run (docs/performance.md).

"Off" disables the policies of every table that has one (as the owner, between rounds);
the statements keep their scope prefix, a constant cost of one ``set_config`` per
statement. Target: with the policies, a figure is at most 10 % worse.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.db import connections

from bench.core import Row, in_rounds, load
from bench.data import maintain
from cot.database.rls import POLICY
from cot.database.roles import as_owner

MAX_COST = 1.10
ALIASES = ("default", "telemetry")


def _policy_tables(alias: str) -> list[str]:
    with as_owner(alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT polrelid::regclass::text FROM pg_policy WHERE polname = %s ORDER BY 1", [POLICY])
        return [row[0] for row in cursor.fetchall()]


def set_row_level_security(enabled: bool) -> None:
    """Switch the policies of both databases on or off."""
    verb = "ENABLE" if enabled else "DISABLE"
    for alias in ALIASES:
        maintain(alias, *[f"ALTER TABLE {table} {verb} ROW LEVEL SECURITY" for table in _policy_tables(alias)])


def p95_on_and_off(title: str, target: tuple[str, Path]) -> Row:
    """One caller's p95 (``(path, tokens file)``, one connection) with the policies on and off."""
    path, tokens = target
    return on_and_off(title, "p95 ms", lambda: load(path, tokens=tokens, connections=1).p95_ms, higher_is_better=False)


def on_and_off(title: str, unit: str, measure: Callable[[], float], *, higher_is_better: bool) -> Row:
    """``measure`` with the policies on and off, alternating per round; the best round of each."""

    def with_policies(enabled: bool) -> Callable[[], float]:
        def phase() -> float:
            set_row_level_security(enabled)
            return measure()

        return phase

    try:
        figures = in_rounds({f"RLS on {unit}": with_policies(True), f"RLS off {unit}": with_policies(False)})
    finally:
        set_row_level_security(True)
    best = max if higher_is_better else min
    on, off = best(figures[f"RLS on {unit}"]), best(figures[f"RLS off {unit}"])
    cost = off / on if higher_is_better else on / off
    return Row(title, on, off, unit, f"<= {MAX_COST:.2f} x cost of RLS off", cost <= MAX_COST, "RLS off", figures)
