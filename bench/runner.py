"""Runs the chosen benchmarks against one gunicorn, prints the table and saves the record."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from django.db import connections

from bench import core, machine
from bench.dashboard import dashboard
from bench.device_list import device_list
from bench.device_updates import device_updates
from bench.ingest import batch_ingest, batch_ingest_with_and_without_rls, fleet, single_posts
from bench.measurement_list import measurement_list
from bench.rollouts import rollout_planning

BENCHMARKS = ("ingest", "single", "list", "measurements", "rollouts", "dashboard")


def run(chosen: list[str]) -> list[core.Row]:
    """Start gunicorn, run the chosen benchmarks in order, return their rows."""
    rows: list[core.Row] = []
    with core.gunicorn():
        devices = fleet() if {"ingest", "single"} & set(chosen) else None
        for name in chosen:
            if name == "ingest" and devices is not None:
                rows.append(batch_ingest(devices))
                rows.append(batch_ingest_with_and_without_rls(devices))
            elif name == "single" and devices is not None:
                rows.append(single_posts(devices))
            elif name == "list":
                rows += device_list()
            elif name == "measurements":
                rows += measurement_list()
            elif name == "dashboard":
                rows += dashboard()
            elif name == "rollouts":
                rows += rollout_planning()
                connections.close_all()
                rows += device_updates()
            connections.close_all()
    return rows


def run_and_report(argv: list[str]) -> int:
    """Exit status: 0 when every target is met, 1 when one is missed, 2 on bad arguments."""
    chosen = argv or list(BENCHMARKS)
    if not set(chosen) <= set(BENCHMARKS):
        print(f"Choose benchmarks from: {', '.join(BENCHMARKS)}.", file=sys.stderr)
        return 2
    core.VAR.mkdir(parents=True, exist_ok=True)
    before = machine.notes()
    rows = run(chosen)
    notes = machine.notes(before)
    print()
    print(core.table(rows))
    print()
    print(machine.describe(notes))
    record = {"machine": notes, "rows": [asdict(row) | {"ratio": row.ratio} for row in rows]}
    (core.VAR / "results.json").write_text(json.dumps(record, indent=2))
    return 0 if all(row.passed for row in rows) else 1
