"""The device side of rollouts: which target a polling device is offered, and what its reports change.

Called by the device API (``firmware.device_api.views``) with the device its credential
names; the device never names another device, and every lookup is pinned to it (and its
tenant), so another tenant's target or image simply does not exist for it.

Offering (``next_offer``). A target is offered only when its rollout is ``running``; its
wave is ``active``, ``soaking`` or ``succeeded`` (stragglers of earlier waves are still
served); it is ``pending``; the rollout's ``start_at`` has passed and, with a maintenance
window, now is inside it (``firmware.windows``); and the rollout's pace (devices per
minute, a token bucket in Redis through ``cot.ratelimit``, shared by every web process)
has room. Offering moves pending → offered with ``attempts + 1`` and ``offered_at``. A
device has at most one open target (offered … installing): while it has one, ``next``
answers that one again, and two concurrent polls of one device are serialized by a
transaction-scoped advisory lock on the device before anything is offered.

Anti-rollback. An image whose security version is below the one the device reports, or
below that of an image the device already succeeded with, is never offered: its target
becomes ``skipped`` with ``error_code = "anti_rollback"`` (audited) and the next
candidate is considered. So does a target whose device no longer matches what planning
chose (it left the rollout's device groups: ``left_target_groups``; its type no longer
fits the image: ``device_type_changed``) or whose image has expired (``image_expired``).

Reports (``report_status``). Every state change goes through ``firmware.counters.move_target``
(``move_targets``' statement for one target; guarded by ``firmware.states.TARGET``), under a
row lock of the target, so a duplicate or
out-of-order report changes nothing twice and is answered with the current state;
only a real contradiction (``succeeded`` before ``installing``, ``failed`` after
``succeeded``) is a 409. Success needs a preceding ``installing`` and the ``version`` the
device runs after its restart: the image's version → ``succeeded`` (and the device's
firmware version recorded through ``devices.services``), another → ``failed`` with
``error_code = "booted_old_image"``. Terminal outcomes are audited; progress reports are not.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, connections, router, transaction
from django.utils import timezone

import audit
from cot import ratelimit
from cot.exceptions import Conflict
from cot.prepared import execute_prepared
from devices.models import Device
from devices.services.registry import record_firmware_version
from firmware.counters import Sql, advance_owned, move_target
from firmware.models import FirmwareImage, FirmwareImageType, Rollout, RolloutTarget, RolloutWave
from firmware.states import TARGET, can_move
from firmware.windows import window_at

Status = RolloutTarget.Status

#: The states of a target the device is working on; at most one per device.
OPEN = (Status.OFFERED, Status.DOWNLOADING, Status.DOWNLOADED, Status.VERIFIED, Status.INSTALLING)
#: The order in which a device progresses; it may skip reports on the way (up to installing).
CHAIN: dict[str, int] = {str(state): rank for rank, state in enumerate(OPEN)}
#: What a device may report (the rest are the server's decisions).
REPORTABLE = frozenset(
    {
        Status.DOWNLOADING,
        Status.DOWNLOADED,
        Status.VERIFIED,
        Status.INSTALLING,
        Status.SUCCEEDED,
        Status.FAILED,
        Status.REJECTED,
    }
)
OFFERABLE_WAVES = (RolloutWave.Status.ACTIVE, RolloutWave.Status.SOAKING, RolloutWave.Status.SUCCEEDED)
ANTI_ROLLBACK = "anti_rollback"
LEFT_TARGET_GROUPS = "left_target_groups"
TYPE_CHANGED = "device_type_changed"
IMAGE_EXPIRED = "image_expired"
BOOTED_OLD_IMAGE = "booted_old_image"
DEVICE_ERROR = "device_error"
# Serializes the offers to one device ("cotF"), with the device id as the second key.
OFFER_LOCK = 0x636F7446
TARGETS = connection.ops.quote_name(RolloutTarget._meta.db_table)
# A device may be in several rollouts at once; more candidates than this wait for the next poll.
MAX_CANDIDATES = 20


@dataclass(frozen=True)
class NoOffer:
    """Nothing to do now: poll again in ``poll_seconds`` (jittered)."""

    poll_seconds: int


def poll_seconds(until: float | None = None) -> int:
    """The interval a device is told to wait before its next poll, jittered by ±20 %.

    Jitter spreads a fleet that booted together over the interval. ``until`` (seconds to
    something that will change the answer: a window opening, the start time, the pace
    refilling) shortens it: the device then comes back shortly after that moment, spread
    over at most a minute, instead of a whole interval later.
    """
    base = float(settings.DEVICE_FIRMWARE_POLL_SECONDS)
    interval = base * random.uniform(0.8, 1.2)  # noqa: S311 (spreading load, not a secret)
    if until is not None and until < interval:
        interval = max(0.0, until) + random.uniform(1.0, min(60.0, max(1.0, base / 10)))  # noqa: S311
    return max(1, round(interval))


Converters = list[tuple[list[Callable[..., Any]], Any]]


@dataclass(frozen=True)
class _Part:
    """One model's columns in a hand-written SELECT: their attnames and the ORM's converters for each."""

    model: type[Any]
    fields: list[str]
    converters: Converters


def _part(db: Any, model: type[Any], table: str) -> tuple[list[str], _Part]:
    """Every concrete column of ``model`` under the table alias ``table``, as ``select_related`` reads them."""
    columns, converters = [], []
    fields = list(model._meta.concrete_fields)
    for field in fields:
        columns.append(f"{table}.{db.ops.quote_name(field.column)}")
        col = field.get_col(table)
        converters.append((db.ops.get_db_converters(col) + col.get_db_converters(db), col))
    return columns, _Part(model=model, fields=[field.attname for field in fields], converters=converters)


def _instances(db: Any, alias: str, row: Any, parts: list[_Part]) -> list[Any]:
    """The model instances in ``row`` (one per part, in order), converted exactly as the ORM does."""
    instances, start = [], 0
    for part in parts:
        values = _converted(db, row[start : start + len(part.fields)], part.converters)
        instances.append(part.model.from_db(alias, part.fields, values))
        start += len(part.fields)
    return instances


def _converted(db: Any, raw: Any, converters: list[Any]) -> list[Any]:
    """A row's raw column values through each column's database converters, as the ORM applies them."""
    values = []
    for value, (functions, expression) in zip(raw, converters, strict=True):
        for convert in functions:
            value = convert(value, expression, db)
        values.append(value)
    return values


@lru_cache(maxsize=4)
def _candidates_read(alias: str) -> tuple[str, list[_Part]]:
    """``_candidates``' query as SQL, built once per process from the models' metadata.

    The same statement as ``RolloutTarget.objects.filter(tenant_id=…, device_id=…)
    .filter(Q(status__in=OPEN) | Q(status=pending, rollout__status=running,
    wave__status__in=OFFERABLE_WAVES)).select_related("rollout", "wave")
    .order_by("rollout_id")[:MAX_CANDIDATES]``, whose compilation cost more CPU than the
    rest of a poll with nothing to do.
    """
    db = connections[alias]
    quote = db.ops.quote_name
    target_columns, targets = _part(db, RolloutTarget, "t")
    rollout_columns, rollouts = _part(db, Rollout, "r")
    wave_columns, waves = _part(db, RolloutWave, "w")
    columns = ", ".join(target_columns + rollout_columns + wave_columns)
    sql = (
        f"SELECT {columns} FROM {TARGETS} t"  # noqa: S608 (names from the models; values are parameters)
        f" INNER JOIN {quote(Rollout._meta.db_table)} r ON r.id = t.rollout_id"
        f" INNER JOIN {quote(RolloutWave._meta.db_table)} w ON w.id = t.wave_id"
        " WHERE t.tenant_id = %s AND t.device_id = %s"
        " AND (t.status = ANY(%s::varchar[])"
        " OR (t.status = %s AND r.status = %s AND w.status = ANY(%s::varchar[])))"
        " ORDER BY t.rollout_id LIMIT %s"
    )
    return sql, [targets, rollouts, waves]


def _candidates(device: Device) -> list[RolloutTarget]:
    # One indexed query (device, status) for the busy path: the open target, or the pending
    # ones of running rollouts in an offerable wave. Filtering before the limit matters:
    # idle (ready, paused) rollouts must not crowd a running one out of the candidates.
    # Not the image: most polls offer nothing; an offer or an open target loads it by its key.
    alias = router.db_for_read(RolloutTarget)
    sql, parts = _candidates_read(alias)
    db = connections[alias]
    params = [
        device.tenant_id,
        device.pk,
        [str(state) for state in OPEN],
        str(Status.PENDING),
        str(Rollout.Status.RUNNING),
        [str(state) for state in OFFERABLE_WAVES],
        MAX_CANDIDATES,
    ]
    result = []
    for row in execute_prepared(db, "cot_offer_candidates", sql, params):
        target, rollout, wave = _instances(db, alias, row, parts)
        target.rollout, target.wave = rollout, wave
        result.append(target)
    return result


def _no_longer_targeted(device: Device, row: RolloutTarget, now: datetime, *, fits: bool | None = None) -> str | None:
    """Why the device must not be offered this target any more (None: it may be).

    Planning chose the device; since then it may have left the rollout's device groups
    (moved by an administrator: a Standard user's rollout must not follow it into groups
    they may not change), changed its type to one the image does not fit, or the image
    may have expired.
    """
    rollout, image = row.rollout, row.rollout.image
    if rollout.target_groups and device.group_id not in rollout.target_groups:
        return LEFT_TARGET_GROUPS
    if fits is None:
        fits = FirmwareImageType.objects.filter(image=image.pk, device_type=device.type_id).exists()
    if not fits:
        return TYPE_CHANGED
    if image.expires_at is not None and image.expires_at <= now:
        return IMAGE_EXPIRED
    return None


def _quoted(model: type[Any], field: str = "") -> str:
    """A model's table, or one of its columns, quoted (for statements built from the models' metadata)."""
    meta = model._meta
    return connection.ops.quote_name(meta.get_field(field).column if field else meta.db_table)


OFFER_LOCK_SQL = "SELECT pg_advisory_xact_lock(%s::integer, %s::integer)"
# The device's open target (the first, as at most one exists) and the highest security
# version it succeeded with: the two reads an offer makes under the lock, in one statement.
OPEN_AND_FLOOR_SQL = f"""
    SELECT
        (SELECT t.id FROM {TARGETS} t
         WHERE t.tenant_id = %s AND t.device_id = %s AND t.status = ANY(%s::varchar[])
         ORDER BY t.id LIMIT 1),
        (SELECT max(i.{_quoted(FirmwareImage, "security_version")})
         FROM {TARGETS} t
         INNER JOIN {_quoted(Rollout)} r ON r.id = t.rollout_id
         INNER JOIN {_quoted(FirmwareImage)} i ON i.id = r.image_id
         WHERE t.tenant_id = $1 AND t.device_id = $2 AND t.status = 'succeeded')
"""  # noqa: S608 (names from the models; values are parameters)
OFFERED_SQL = f"SELECT status, attempts, offered_at, changed_at, progress, error_code FROM {TARGETS} WHERE id = %s"  # noqa: S608


@lru_cache(maxsize=4)
def _image_read(alias: str) -> tuple[str, list[str], list[tuple[list[Callable[..., Any]], Any]]]:
    """The image (every column) and whether it fits a device type, in one statement built once per process."""
    db = connections[alias]
    quote = db.ops.quote_name
    fields = list(FirmwareImage._meta.concrete_fields)
    columns, converters = [], []
    for field in fields:
        columns.append(f"i.{quote(field.column)}")
        col = field.get_col("i")
        converters.append((db.ops.get_db_converters(col) + col.get_db_converters(db), col))
    links = quote(FirmwareImageType._meta.db_table)
    image_fk = quote(FirmwareImageType._meta.get_field("image").column)
    type_fk = quote(FirmwareImageType._meta.get_field("device_type").column)
    sql = (
        f"SELECT {', '.join(columns)},"  # noqa: S608 (names from the models; values are parameters)
        f" EXISTS (SELECT 1 FROM {links} l WHERE l.{image_fk} = i.id AND l.{type_fk} = %s)"
        f" FROM {quote(FirmwareImage._meta.db_table)} i WHERE i.id = %s"
    )
    return sql, [field.attname for field in fields], converters


def _image_for(row: RolloutTarget, device: Device) -> tuple[FirmwareImage, bool]:
    """The image of ``row``'s rollout (cached on it, as ``row.rollout.image``) and whether it fits the device's type."""
    alias = router.db_for_read(FirmwareImage)
    sql, fields, converters = _image_read(alias)
    db = connections[alias]
    ((*raw, fits),) = execute_prepared(db, "cot_offer_image", sql, [device.type_id, row.rollout.image_id])
    image = FirmwareImage.from_db(alias, fields, _converted(db, raw, converters))
    row.rollout.image = image
    return image, bool(fits)


def _pace(rollout: Rollout) -> list[ratelimit.Limit]:
    if not rollout.pace_per_minute:
        return []
    return ratelimit.limits_for("rollout_pace", rollout.pk, {"minute": f"{rollout.pace_per_minute}/min"})


def next_offer(device: Device, *, security_version: int, now: datetime | None = None) -> RolloutTarget | NoOffer:
    """The target ``device`` should work on (offered now or already open), or how long to wait."""
    now = now or timezone.now()
    rows = _candidates(device)
    for row in rows:
        if row.status in CHAIN:
            return row
    waits: list[float] = []
    eligible: list[RolloutTarget] = []
    for row in rows:
        rollout = row.rollout
        if rollout.status != Rollout.Status.RUNNING or row.wave.status not in OFFERABLE_WAVES:
            continue  # a later wave or a paused rollout: nothing known about when
        if rollout.start_at is not None and rollout.start_at > now:
            waits.append((rollout.start_at - now).total_seconds())
            continue
        window = window_at(rollout.window_cron, rollout.window_minutes, rollout.window_timezone, now)
        if not window.open:
            if window.opens_at is not None:
                waits.append((window.opens_at - now).total_seconds())
            continue
        eligible.append(row)
    if eligible:
        offered = _offer(device, eligible, security_version, now, waits)
        if offered is not None:
            return offered
    return NoOffer(poll_seconds(min(waits) if waits else None))


def _offer(
    device: Device, eligible: list[RolloutTarget], security_version: int, now: datetime, waits: list[float]
) -> RolloutTarget | None:
    with transaction.atomic():
        execute_prepared(connection, "cot_offer_lock", OFFER_LOCK_SQL, [OFFER_LOCK, device.pk % 2**31])
        # Under the lock (a statement of its own: a statement's snapshot predates its lock):
        # another poll of this device may have been offered something meanwhile.
        ((open_id, best),) = execute_prepared(
            connection,
            "cot_offer_open_and_floor",
            OPEN_AND_FLOOR_SQL,
            [device.tenant_id, device.pk, [str(state) for state in OPEN]],
        )
        if open_id is not None:
            return RolloutTarget.objects.select_related("rollout", "rollout__image").get(pk=open_id)
        floor = max(security_version, -1 if best is None else int(best))
        for row in eligible:
            image, fits = _image_for(row, device)
            reason = _no_longer_targeted(device, row, now, fits=fits)
            if reason is not None:
                _skip(device, row, now, reason)
                continue
            if image.security_version < floor:
                _skip(
                    device,
                    row,
                    now,
                    ANTI_ROLLBACK,
                    image_security_version=image.security_version,
                    device_security_version=floor,
                )
                continue
            pace = _pace(row.rollout)
            refusal = ratelimit.check(pace) if pace else None
            if refusal is not None:
                waits.append(float(refusal.retry_after))
                continue
            moved = move_target(
                row.pk,
                Status.OFFERED,
                attempts=Sql("attempts + 1"),
                offered_at=now,
                changed_at=now,
                progress=None,
                error_code="",
                reported_version="",
                started_at=None,
                finished_at=None,
            )
            if not moved:  # canceled or skipped by the engine a moment ago
                if pace:
                    ratelimit.refund(pace)
                continue
            ((row.status, row.attempts, row.offered_at, row.changed_at, row.progress, row.error_code),) = (
                execute_prepared(connection, "cot_offered_target", OFFERED_SQL, [row.pk])
            )
            return row
    return None


def _skip(device: Device, row: RolloutTarget, now: datetime, error_code: str, **details: Any) -> None:
    """The target is never offered: ``skipped`` with the reason as its error code, audited."""
    moved = move_target(
        row.pk,
        Status.SKIPPED,
        error_code=error_code,
        changed_at=now,
        finished_at=now,
    )
    if moved:
        audit.record(
            "firmware.target.skipped",
            tenant=device.tenant_id,
            target=row,
            data={"rollout": row.rollout_id, "device": device.pk, "error_code": error_code, **details},
        )


@dataclass(frozen=True)
class Report:
    """A device's report, validated: the target it names and what it says."""

    target_id: int
    status: str
    progress: int | None = None
    error_code: str = ""
    version: str = ""


@dataclass(frozen=True)
class Answer:
    """What a report is answered with: the target's state after it."""

    target: int
    status: str
    progress: int | None
    error_code: str

    @classmethod
    def of(cls, target: RolloutTarget) -> Answer:
        """The answer for a target as it is."""
        return cls(target=target.pk, status=target.status, progress=target.progress, error_code=target.error_code)


class NotFound(Exception):
    """No such target for this device (the same answer for another device's or tenant's)."""


def report_status(device: Device, report: Report, *, now: datetime | None = None) -> Answer:
    """Apply ``report`` to the device's target; the target's state afterwards.

    Raises ``NotFound`` for a target that is not this device's, ``Conflict`` for a report
    that contradicts the target's state.
    """
    now = now or timezone.now()
    stepped = _next_step(device, report, now)
    if stepped is not None:
        return stepped
    return Answer.of(_report_in_general(device, report, now))


def _report_in_general(device: Device, report: Report, now: datetime) -> RolloutTarget:
    """Any report, decided with the target's row locked."""
    with transaction.atomic():
        locked = _locked_target(report.target_id, device)
        if locked is None:
            raise NotFound
        target, image_version = locked
        current, to = target.status, report.status
        if to == Status.SUCCEEDED:
            return _success(device, target, image_version, report, now)
        if current == to:
            return _progress(target, report, now)
        if to in CHAIN:
            if current in CHAIN and CHAIN[to] > CHAIN[current]:
                return _advance(target, to, report, now)
            return target  # an earlier step, or the target left the device's hands: stale
        # failed or rejected
        if can_move(TARGET, current, to):
            error = report.error_code or DEVICE_ERROR
            _move(target, to, now, error_code=error, progress=report.progress, finished_at=now)
            _audit_outcome(device, target, {"error_code": error})
            return target
        if current in (Status.TIMED_OUT, Status.CANCELED, Status.PENDING, Status.FAILED):
            return target  # the server decided first, or an earlier attempt's late word: nothing to change
        raise Conflict(f"The target is {current}; it cannot become {to}.")


def _next_step(device: Device, report: Report, now: datetime) -> Answer | None:
    """The common report, the step right after the target's current one, as one statement; None if it is not that.

    What ``_advance`` does for a single step (the same columns, the same guarded and
    counted move), without the transaction, the locked read and the model instance: a
    device reports each step, so most reports are this. Anything else (a step skipped,
    a repeat, a failure, success, another device's target) finds no row in the step
    before and goes the general way, which decides with the row locked.
    """
    rank = CHAIN.get(report.status, 0)
    if rank == 0:
        return None
    progress = report.progress
    if report.status == Status.DOWNLOADED and progress is None:
        progress = 100
    owner = (device.tenant_id, device.pk)
    moved = advance_owned(report.target_id, owner, list(CHAIN)[rank - 1], report.status, now=now, progress=progress)
    if moved is None:
        return None
    return Answer(target=report.target_id, status=report.status, progress=moved[0], error_code=moved[1])


@dataclass(frozen=True)
class _TargetRead:
    """The report's locking read, as SQL plus what turns its row into a ``RolloutTarget``."""

    sql: str
    fields: list[str]
    converters: list[tuple[list[Callable[..., Any]], Any]]


@lru_cache(maxsize=4)
def _target_read(alias: str) -> _TargetRead:
    """The target (every column) and its image's version, locked; built once per process from the models.

    The same rows as ``RolloutTarget.objects.select_for_update(of=("self",))
    .select_related("rollout__image").filter(pk=…, tenant_id=…, device_id=…)``, without
    compiling that queryset on every report: a report needs the target and the version
    of its image, nothing else of the rollout or the image.
    """
    db = connections[alias]
    quote = db.ops.quote_name
    fields = list(RolloutTarget._meta.concrete_fields)
    columns, converters = [], []
    for field in fields:
        columns.append(f"t.{quote(field.column)}")
        col = field.get_col("t")
        converters.append((db.ops.get_db_converters(col) + col.get_db_converters(db), col))
    rollout_fk = RolloutTarget._meta.get_field("rollout").column
    image_fk = Rollout._meta.get_field("image").column
    sql = (
        f"SELECT {', '.join(columns)}, i.{quote(FirmwareImage._meta.get_field('version').column)}"  # noqa: S608
        f" FROM {quote(RolloutTarget._meta.db_table)} t"
        f" INNER JOIN {quote(Rollout._meta.db_table)} r ON r.{quote(Rollout._meta.pk.column)} = t.{quote(rollout_fk)}"
        f" INNER JOIN {quote(FirmwareImage._meta.db_table)} i"
        f" ON i.{quote(FirmwareImage._meta.pk.column)} = r.{quote(image_fk)}"
        f" WHERE t.{quote(RolloutTarget._meta.pk.column)} = %s"
        f" AND t.{quote(RolloutTarget._meta.get_field('tenant').column)} = %s"
        f" AND t.{quote(RolloutTarget._meta.get_field('device').column)} = %s"
        " FOR UPDATE OF t"
    )
    return _TargetRead(sql=sql, fields=[field.attname for field in fields], converters=converters)


def _locked_target(target_id: int, device: Device) -> tuple[RolloutTarget, str] | None:
    """The device's target ``target_id``, row-locked, and its image's version; None if not this device's."""
    alias = router.db_for_write(RolloutTarget)
    read = _target_read(alias)
    db = connections[alias]
    rows = execute_prepared(db, "cot_report_target", read.sql, [target_id, device.tenant_id, device.pk])
    if not rows:
        return None
    (row,) = rows
    return RolloutTarget.from_db(alias, read.fields, _converted(db, row[:-1], read.converters)), row[-1]


def _move(target: RolloutTarget, to: str, now: datetime, **columns: Any) -> None:
    """One guarded move of this target; the row is locked, so it moves (the state was checked)."""
    columns = {name: value for name, value in columns.items() if not (name == "progress" and value is None)}
    moved = move_target(target.pk, to, changed_at=now, **columns)
    if not moved:  # pragma: no cover - the row lock makes this impossible
        raise Conflict(f"The target is {target.status}; it cannot become {to}.")
    target.status = to
    target.changed_at = now
    for name, value in columns.items():
        setattr(target, name, value)


def _progress(target: RolloutTarget, report: Report, now: datetime) -> RolloutTarget:
    """The same state again: a progress figure at most (a duplicate changes nothing)."""
    if report.progress is not None and target.status in CHAIN and report.progress != target.progress:
        execute_prepared(
            connection,
            "cot_target_progress",
            f"UPDATE {TARGETS} SET progress = %s, changed_at = %s WHERE id = %s",  # noqa: S608 (the model's table)
            [report.progress, now, target.pk],
        )
        target.progress, target.changed_at = report.progress, now
    return target


def _advance(target: RolloutTarget, to: str, report: Report, now: datetime) -> RolloutTarget:
    """Forward along the chain, through any step whose report was lost (each one a guarded move)."""
    started = target.started_at or now  # the per-device timeout counts from the first progress
    for state in list(CHAIN)[CHAIN[target.status] + 1 : CHAIN[to] + 1]:
        progress = report.progress if state == to else None
        if state == Status.DOWNLOADED and progress is None:
            progress = 100
        _move(target, state, now, started_at=started, progress=progress)
    return target


def _success(device: Device, target: RolloutTarget, image_version: str, report: Report, now: datetime) -> RolloutTarget:
    current = target.status
    if current == Status.INSTALLING:
        if report.version == image_version:
            _move(target, Status.SUCCEEDED, now, reported_version=report.version, progress=100, finished_at=now)
            record_firmware_version(device, report.version)
            _audit_outcome(device, target, {"version": report.version})
        else:
            _move(
                target,
                Status.FAILED,
                now,
                reported_version=report.version,
                error_code=BOOTED_OLD_IMAGE,
                finished_at=now,
            )
            _audit_outcome(device, target, {"error_code": BOOTED_OLD_IMAGE, "version": report.version})
        return target
    if current == Status.SUCCEEDED or (current == Status.FAILED and target.error_code == BOOTED_OLD_IMAGE):
        return target  # the same report again
    if current == Status.TIMED_OUT:
        return target  # the server gave up first; the engine decides about a retry
    if current in CHAIN:
        raise Conflict(f"The target is {current}: report installing, restart, then succeeded with the version.")
    raise Conflict(f"The target is {current}; it cannot become succeeded.")


def _audit_outcome(device: Device, target: RolloutTarget, data: dict[str, Any]) -> None:
    audit.record(
        f"firmware.target.{target.status}",
        tenant=device.tenant_id,
        target=target,
        data={"rollout": target.rollout_id, "device": device.pk, "attempts": target.attempts, **data},
    )


def download_image(device: Device, image_id: int) -> FirmwareImage | None:
    """The image, if ``device`` has an open target with it; None otherwise (missing, untargeted, another tenant's)."""
    target = (
        RolloutTarget.objects.filter(
            tenant_id=device.tenant_id, device_id=device.pk, status__in=OPEN, rollout__image_id=image_id
        )
        .select_related("rollout__image")
        .order_by("pk")
        .first()
    )
    return None if target is None else target.rollout.image
