"""Moving rollout targets between states, with the wave's sharded progress counters kept in step.

Every change of a target's state goes through ``move_targets``: one statement locks the
rows that may make the move (their current state is a source of ``to`` in
``firmware.states.TARGET``), updates them and adds the deltas to ``RolloutCounter`` on
one shard, so concurrent device reports of one wave spread over ``RolloutCounter.SHARDS``
rows instead of queueing on one. The same statement serves one device's report and a
set-based move of a million targets (cancel, skip, retry).

Counter rows stay locked until the transaction ends, so every statement takes them in
one order, the wave and then the state's place in ``RolloutTarget.Status`` (the order a
target moves in), and the moves of one target always use the same shard (its id modulo
the shard count). A report that moves its target several steps in one transaction
therefore takes its rows in that same order, and two such reports cannot deadlock, as
they did when each step drew a shard at random.

A move that finds no row in a source state changes nothing: a duplicate or late report
is answered from the row as it is. ``reconcile`` recounts waves from their targets and
replaces their counters, repairing drift (a raw SQL fix, a bug).
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Field, QuerySet, Sum

from cot.prepared import execute_prepared
from firmware.models import RolloutCounter, RolloutTarget
from firmware.states import TARGET, sources_of

TARGETS = connection.ops.quote_name(RolloutTarget._meta.db_table)
COUNTERS = connection.ops.quote_name(RolloutCounter._meta.db_table)
# The lock order of counter rows within a wave: the states as the model declares them.
STATE_ORDER = "ARRAY[{}]::varchar[]".format(", ".join(f"'{state}'" for state in RolloutTarget.Status.values))
# Serializes reconciliations (two recounts of one wave at once would each delete the other's rows).
RECONCILE_LOCK = 0x636F7452  # "cotR"


@dataclass(frozen=True)
class Sql:
    """A SQL expression for a column in ``move_targets`` (``Sql("attempts + 1")``); never user input."""

    expression: str


def move_targets(
    targets: QuerySet[RolloutTarget],
    to: str,
    *,
    limit: int | None = None,
    skip_locked: bool = False,
    **columns: Any,
) -> int:
    """Move the rows of ``targets`` that may become ``to`` there, set ``columns``, count; the number moved.

    See ``move_targets_per_rollout``, which this sums.
    """
    return sum(move_targets_per_rollout(targets, to, limit=limit, skip_locked=skip_locked, **columns).values())


def move_targets_per_rollout(
    targets: QuerySet[RolloutTarget],
    to: str,
    *,
    limit: int | None = None,
    skip_locked: bool = False,
    **columns: Any,
) -> dict[tuple[int, int], int]:
    """As ``move_targets``; the number moved per rollout: ``{(tenant id, rollout id): moved}``.

    The per-rollout figures let a set-based move over many rollouts (the timeout sweep)
    write one audit entry per rollout.

    ``targets`` is any queryset of targets (the caller's filters: one device's target, a
    wave, expired ones); only rows whose state is a source of ``to`` move. ``limit``
    bounds a batch and ``skip_locked`` leaves rows another transaction holds to the next
    one (the timeout sweep). Column values are parameters, or ``Sql`` expressions.
    """
    sources = sorted(sources_of(TARGET, to))
    # Without the models' default ordering (unless a slice depends on it), which would join
    # rollouts and tenants into the subquery only to sort it.
    if not targets.query.is_sliced:
        targets = targets.order_by()
    source_sql, source_params = targets.values("pk").query.sql_with_params()
    assignments = ["status = %s"]
    params: list[Any] = [to]
    for name, value in columns.items():
        field = RolloutTarget._meta.get_field(name)
        assert isinstance(field, Field), name  # a concrete column of the target, not a relation
        column = connection.ops.quote_name(field.column)
        if isinstance(value, Sql):
            assignments.append(f"{column} = {value.expression}")
        else:
            assignments.append(f"{column} = %s")
            params.append(value)
    lock = "FOR UPDATE OF candidate SKIP LOCKED" if skip_locked else "FOR UPDATE OF candidate"
    bound = "LIMIT %s" if limit is not None else ""
    shard = random.randrange(RolloutCounter.SHARDS)  # noqa: S311 (spreading writes, not a secret)
    sql = f"""
        WITH old AS (
            SELECT candidate.id, candidate.status, candidate.wave_id, candidate.tenant_id, candidate.rollout_id
            FROM {TARGETS} AS candidate
            WHERE candidate.id IN ({source_sql}) AND candidate.status = ANY(%s)
            ORDER BY candidate.id {bound} {lock}
        ), moved AS (
            UPDATE {TARGETS} AS target SET {", ".join(assignments)}
            FROM old WHERE target.id = old.id
            RETURNING old.status AS old_status, old.wave_id, old.tenant_id, old.rollout_id
        ), counted AS (
            SELECT tenant_id, wave_id, old_status, count(*) AS n FROM moved GROUP BY tenant_id, wave_id, old_status
        ), bumped AS (
            INSERT INTO {COUNTERS} (tenant_id, wave_id, shard, status, devices)
            SELECT * FROM (
                SELECT tenant_id, wave_id, %s, old_status, -n FROM counted
                UNION ALL
                SELECT tenant_id, wave_id, %s, %s, sum(n) FROM counted GROUP BY tenant_id, wave_id
            ) AS delta (tenant_id, wave_id, shard, status, devices)
            ORDER BY wave_id, array_position({STATE_ORDER}, status::varchar)
            ON CONFLICT (wave_id, shard, status) DO UPDATE SET devices = {COUNTERS}.devices + EXCLUDED.devices
            RETURNING 1
        )
        SELECT tenant_id, rollout_id, count(*) FROM moved GROUP BY tenant_id, rollout_id
    """  # noqa: S608 (table and column names come from the models; values are parameters)
    # In the order of the text: the locking SELECT, the UPDATE's SET, the counter rows.
    ordered = [*source_params, sources, *([limit] if limit is not None else []), *params, shard, shard, to]
    with connection.cursor() as cursor:
        cursor.execute(sql, ordered)
        return {(tenant, rollout): int(n) for tenant, rollout, n in cursor.fetchall()}


# The counter deltas of a one-target move (the CTE ``moved`` returns its old state, wave and
# tenant): -1 for the old state, +1 for the new, on one shard, taken in the lock order.
# The parameters: the shard twice, then the new state. The casts are for prepared
# statements, which infer parameter types from context, and a UNION's select list gives none.
ONE_BUMPED = f"""bumped AS (
            INSERT INTO {COUNTERS} (tenant_id, wave_id, shard, status, devices)
            SELECT * FROM (
                SELECT tenant_id, wave_id, %s::integer, old_status, -1 FROM moved
                UNION ALL
                SELECT tenant_id, wave_id, %s::integer, %s::varchar, 1 FROM moved
            ) AS delta (tenant_id, wave_id, shard, status, devices)
            ORDER BY array_position({STATE_ORDER}, status::varchar)
            ON CONFLICT (wave_id, shard, status) DO UPDATE SET devices = {COUNTERS}.devices + EXCLUDED.devices
            RETURNING 1
        )"""  # noqa: S608 (table names come from the models; values are parameters)


def move_target(target_id: int, to: str, **columns: Any) -> bool:
    """Move the one target ``target_id`` if it may become ``to``; True if it moved.

    The same statement as ``move_targets(RolloutTarget.objects.filter(pk=target_id), to,
    **columns)`` (lock, guarded update, sharded counter deltas), with the target's id a
    parameter instead of a compiled queryset, and prepared once per connection and set
    of columns (``cot.prepared``): the device API moves one target per request, and
    compiling the queryset cost more CPU than the rest of the move.
    """
    shape = tuple((name, value.expression if isinstance(value, Sql) else None) for name, value in columns.items())
    sql, values = _single_move(to, shape)
    params: list[Any] = [target_id, sorted(sources_of(TARGET, to)), to]
    params += [value for value in columns.values() if not isinstance(value, Sql)]
    assert len(params) == values
    shard = shard_of(target_id)
    params += [shard, shard, to]
    name = "cot_move_target_" + hashlib.sha1(sql.encode(), usedforsecurity=False).hexdigest()[:16]
    rows = execute_prepared(connection, name, sql, params)
    return bool(rows and rows[0][0])


def shard_of(target_id: int) -> int:
    """The counter shard of one target's moves: always the same one (see the module's note on lock order)."""
    return target_id % RolloutCounter.SHARDS


@lru_cache(maxsize=64)
def _single_move(to: str, columns: tuple[tuple[str, str | None], ...]) -> tuple[str, int]:
    """The SQL of ``move_target`` for these columns (name, and the ``Sql`` text or None for a parameter).

    Returns the text and the number of parameters before the counter's (id, sources, state, values).
    """
    assignments = ["status = %s"]
    count = 3
    for name, expression in columns:
        field = RolloutTarget._meta.get_field(name)
        assert isinstance(field, Field), name  # a concrete column of the target, not a relation
        column = connection.ops.quote_name(field.column)
        if expression is not None:
            assignments.append(f"{column} = {expression}")
        else:
            assignments.append(f"{column} = %s")
            count += 1
    sql = f"""
        WITH old AS (
            SELECT candidate.id, candidate.status, candidate.wave_id, candidate.tenant_id, candidate.rollout_id
            FROM {TARGETS} AS candidate
            WHERE candidate.id = %s AND candidate.status = ANY(%s::varchar[])
            FOR UPDATE OF candidate
        ), moved AS (
            UPDATE {TARGETS} AS target SET {", ".join(assignments)}
            FROM old WHERE target.id = old.id
            RETURNING old.status AS old_status, old.wave_id, old.tenant_id
        ), {ONE_BUMPED}
        SELECT count(*) FROM moved
    """  # noqa: S608 (table and column names come from the models; values are parameters)
    return sql, count


def advance_owned(
    target_id: int, owner: tuple[int, int], source: str, to: str, *, now: datetime, progress: int | None
) -> tuple[int | None, str] | None:
    """Move the device's target ``target_id`` one step, ``source`` → ``to``, in one statement; its row, or None.

    A device's progress report is nearly always the step after the last one; this is
    that report's whole write (ownership check, guarded move, counter deltas), so it
    needs no transaction of its own and one round trip instead of four. None when the
    target is not this device's or not in ``source``: the caller then takes the general
    path, which locks, reads and decides. ``owner`` is the device's ``(tenant id, device
    id)``; ``now`` sets changed_at (and started_at, where the timeout counts from, unless
    set); a ``progress`` of None keeps the current figure. The row is ``(progress,
    error_code)`` after the move.
    """
    assert source in sources_of(TARGET, to), (source, to)
    shard = shard_of(target_id)
    params = [target_id, *owner, source, to, now, now, progress, shard, shard, to]
    rows = execute_prepared(connection, "cot_advance_owned_target", _ADVANCE_OWNED, params)
    return (rows[0][0], rows[0][1]) if rows else None


_ADVANCE_OWNED = f"""
    WITH old AS (
        SELECT candidate.id, candidate.status, candidate.wave_id, candidate.tenant_id
        FROM {TARGETS} AS candidate
        WHERE candidate.id = %s AND candidate.tenant_id = %s AND candidate.device_id = %s
          AND candidate.status = %s::varchar
        FOR UPDATE OF candidate
    ), moved AS (
        UPDATE {TARGETS} AS target
        SET status = %s::varchar, changed_at = %s::timestamptz,
            started_at = COALESCE(target.started_at, %s::timestamptz),
            progress = COALESCE(%s::smallint, target.progress)
        FROM old WHERE target.id = old.id
        RETURNING old.status AS old_status, old.wave_id, old.tenant_id, target.progress, target.error_code
    ), {ONE_BUMPED}
    SELECT progress, error_code FROM moved
"""  # noqa: S608 (table and column names come from the models; values are parameters)


def add_planned(tenant_id: int, planned: Mapping[int, int]) -> None:
    """The counters of freshly planned waves: every target ``pending`` (planning writes them set-based)."""
    RolloutCounter.objects.bulk_create(
        RolloutCounter(tenant_id=tenant_id, wave_id=wave_id, shard=0, status=RolloutTarget.Status.PENDING, devices=n)
        for wave_id, n in planned.items()
        if n
    )


def counts(wave_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """``{wave id: {state: devices}}`` summed over the shards (states with no device left out)."""
    result: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        RolloutCounter.objects.filter(wave_id__in=list(wave_ids))
        .values_list("wave_id", "status")
        .order_by()
        .annotate(total=Sum("devices"))
    )
    for wave_id, status, total in rows:
        if total:
            result[wave_id][status] = int(total)
    return dict(result)


def recount(wave_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """What the counters should say, counted from the targets themselves (the index on wave and state)."""
    result: dict[int, dict[str, int]] = defaultdict(dict)
    rows = (
        RolloutTarget.objects.filter(wave_id__in=list(wave_ids))
        .values_list("wave_id", "status")
        .order_by()
        .annotate(total=Count("pk"))
    )
    for wave_id, status, total in rows:
        result[wave_id][status] = int(total)
    return dict(result)


def reconcile(wave_ids: Iterable[int]) -> list[int]:
    """Recount these waves from their targets and replace their counters; the ids of waves that had drifted."""
    ids = sorted(set(wave_ids))
    if not ids:
        return []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECONCILE_LOCK])
        before = counts(ids)
        RolloutCounter.objects.filter(wave_id__in=ids).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {COUNTERS} (tenant_id, wave_id, shard, status, devices)
                SELECT tenant_id, wave_id, 0, status, count(*) FROM {TARGETS}
                WHERE wave_id = ANY(%s) GROUP BY tenant_id, wave_id, status
                """,  # noqa: S608 (table names from the models)
                [ids],
            )
        after = counts(ids)
    return [wave_id for wave_id in ids if before.get(wave_id, {}) != after.get(wave_id, {})]
