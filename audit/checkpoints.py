"""Signed checkpoints of every audit chain's tip, kept outside the database.

The hash chain reveals entries changed, inserted or removed inside a chain, but a chain
whose newest entries were removed is still a valid chain. A checkpoint records each
chain's tip (position and entry hash) in a file in ``AUDIT_CHECKPOINT_DIR``, which lives
apart from the database, so ``verify_audit`` can tell when a chain now ends before a tip
it once had. Entries written after the newest checkpoint are not covered.

A checkpoint is only ever written on top of the previous one: when a chain now ends
before, or differs at, the tip the newest checkpoint recorded (or a checkpointed tenant
is gone), ``write_checkpoint`` refuses, so waiting for the next run cannot launder a
removal into a fresh, consistent checkpoint. ``verify_audit`` checks every kept file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEntry
from tenants.models import Tenant

FORMAT_VERSION = 1
PREFIX = "audit-checkpoint-"
SUFFIX = ".json"
# Enough history to find the newest intact file after a few bad ones; older files
# belong in the directory's backup, not in the directory.
KEEP = 200
# Prefix of the signed message. Entry digests sign "<64 hex digits>\n…", so a checkpoint
# signature can never stand in for an entry's hash or the other way round.
SIGNATURE_DOMAIN = b"cot audit checkpoint\n"


@dataclass(frozen=True)
class Tip:
    """The newest entry of one chain: ``tenant_id`` None is the platform chain."""

    tenant_id: int | None
    slug: str
    seq: int
    entry_hash: str

    @property
    def label(self) -> str:
        return "the platform chain" if self.tenant_id is None else f"tenant '{self.slug}'"


class CheckpointRefused(Exception):
    """The chains contradict the newest checkpoint; writing a new one would hide that."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file whose signature verified."""

    path: Path
    written_at: datetime
    tips: dict[int | None, Tip]

    @property
    def name(self) -> str:
        return self.path.name


def checkpoint_dir() -> Path:
    """Where checkpoints are written and read (``COT_AUDIT_CHECKPOINT_DIR``)."""
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def chain_tips() -> list[Tip]:
    """Every non-empty chain's newest entry, read in one statement (one consistent snapshot).

    One index probe per chain on (tenant_id, seq) instead of a scan of the whole table,
    which ``DISTINCT ON`` over all entries would need. The platform chain orders by both
    index columns: PostgreSQL uses the index order after ``= id`` but not after ``IS NULL``.
    """
    entries, tenants = AuditEntry._meta.db_table, Tenant._meta.db_table
    sql = f"""
        SELECT NULL::bigint AS tenant_id, '' AS slug, tip.seq, tip.entry_hash
        FROM (
            SELECT seq, entry_hash FROM {entries} WHERE tenant_id IS NULL ORDER BY tenant_id DESC, seq DESC LIMIT 1
        ) AS tip
        UNION ALL
        SELECT tenant.id, tenant.slug, tip.seq, tip.entry_hash
        FROM {tenants} AS tenant
        CROSS JOIN LATERAL (
            SELECT seq, entry_hash FROM {entries} WHERE tenant_id = tenant.id ORDER BY seq DESC LIMIT 1
        ) AS tip
        ORDER BY tenant_id NULLS FIRST
    """  # noqa: S608 - table names come from the models
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [Tip(tenant_id, slug, seq, entry_hash) for tenant_id, slug, seq, entry_hash in cursor.fetchall()]


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _signature(payload: dict[str, Any]) -> str:
    key = settings.AUDIT_CHAIN_KEY.encode()
    return hmac.new(key, SIGNATURE_DOMAIN + _canonical(payload), hashlib.sha256).hexdigest()


def _files(directory: Path) -> list[Path]:
    """Checkpoint files, oldest first (their names sort by the time they were written)."""
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.glob(f"{PREFIX}*{SUFFIX}") if path.is_file())


def hashes_at(tips: list[Tip]) -> dict[tuple[int | None, int], str]:
    """The entry hash stored now at each ``tip``'s chain and position, in one statement."""
    tenant_tips = [tip for tip in tips if tip.tenant_id is not None]
    platform_seq = next((tip.seq for tip in tips if tip.tenant_id is None), None)
    table = AuditEntry._meta.db_table
    sql = f"""
        SELECT e.tenant_id, e.seq, e.entry_hash FROM {table} AS e
        JOIN unnest(%s::bigint[], %s::bigint[]) AS wanted(tenant_id, seq)
          ON e.tenant_id = wanted.tenant_id AND e.seq = wanted.seq
        UNION ALL
        SELECT tenant_id, seq, entry_hash FROM {table} WHERE tenant_id IS NULL AND seq = %s
    """  # noqa: S608 - the table name comes from the model
    params: list[Any] = [[tip.tenant_id for tip in tenant_tips], [tip.seq for tip in tenant_tips], platform_seq]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(tenant_id, seq): entry_hash for tenant_id, seq, entry_hash in cursor.fetchall()}


def regressions(previous: Checkpoint, tips: list[Tip]) -> list[str]:
    """How the chains as they are now (``tips``) contradict ``previous``; empty when they only grew."""
    now = {tip.tenant_id: tip for tip in tips}
    stored = hashes_at(list(previous.tips.values()))
    problems = []
    for old in previous.tips.values():
        current = now.get(old.tenant_id)
        if current is None:
            problems.append(f"{old.label} is in checkpoint {previous.name} but its chain is gone")
            continue
        problem = tip_problem(
            old, last_seq=current.seq, hash_at_tip_seq=stored.get((old.tenant_id, old.seq)), checkpoint=previous
        )
        if problem is not None:
            problems.append(f"{old.label}: {problem}")
    return problems


def write_checkpoint() -> Checkpoint:
    """Write one signed checkpoint of every chain's tip atomically; drop all but the newest ``KEEP``.

    Refuses (``CheckpointRefused``) when the chains contradict the newest checkpoint: a
    removal stays visible instead of becoming the new normal. Idempotent otherwise:
    running it twice writes two checkpoints of the same (or a later) state.
    """
    directory = checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    written_at = timezone.now()
    tips = chain_tips()
    previous = next(iter(valid_checkpoints()[0]), None)
    if previous is not None and (problems := regressions(previous, tips)):
        raise CheckpointRefused("The audit trail contradicts its newest checkpoint: " + "; ".join(problems) + ".")
    payload = {
        "version": FORMAT_VERSION,
        "written_at": written_at.isoformat(),
        "chains": [
            {"tenant_id": tip.tenant_id, "slug": tip.slug, "seq": tip.seq, "entry_hash": tip.entry_hash} for tip in tips
        ],
    }
    document = json.dumps({"checkpoint": payload, "signature": _signature(payload)}, sort_keys=True, indent=1)
    path = directory / f"{PREFIX}{written_at:%Y%m%dT%H%M%S%fZ}{SUFFIX}"
    # A reader sees either no file or the whole file, never a half-written one.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=SUFFIX)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(document)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    for old in _files(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    return Checkpoint(path=path, written_at=written_at, tips={tip.tenant_id: tip for tip in tips})


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable, so a crash cannot bring the previous state back.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path``, or None when it is not one this key signed (altered or damaged)."""
    try:
        document = json.loads(path.read_bytes())
        payload, signature = document["checkpoint"], document["signature"]
        if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(payload)):
            return None
        if payload["version"] != FORMAT_VERSION:
            return None
        tips = [Tip(c["tenant_id"], c["slug"], int(c["seq"]), c["entry_hash"]) for c in payload["chains"]]
        written_at = datetime.fromisoformat(payload["written_at"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return Checkpoint(path=path, written_at=written_at, tips={tip.tenant_id: tip for tip in tips})


def valid_checkpoints() -> tuple[list[Checkpoint], list[Path]]:
    """Every kept checkpoint whose signature verifies, newest first, and the files that did not verify."""
    valid: list[Checkpoint] = []
    altered: list[Path] = []
    for path in reversed(_files(checkpoint_dir())):
        checkpoint = read_checkpoint(path)
        if checkpoint is None:
            altered.append(path)
        else:
            valid.append(checkpoint)
    return valid, altered


def tip_problem(tip: Tip, *, last_seq: int, hash_at_tip_seq: str | None, checkpoint: Checkpoint) -> str | None:
    """Why a chain that now ends at ``last_seq`` contradicts ``checkpoint``'s ``tip``, or None."""
    if last_seq < tip.seq:
        return (
            f"the newest entries were removed: the chain ends at position {last_seq}, "
            f"but checkpoint {checkpoint.name} recorded position {tip.seq}"
        )
    if hash_at_tip_seq is None or not hmac.compare_digest(hash_at_tip_seq, tip.entry_hash):
        return (
            f"the chain was rewritten: its entry at position {tip.seq} does not have the hash "
            f"checkpoint {checkpoint.name} recorded"
        )
    return None
