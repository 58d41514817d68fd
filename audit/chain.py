"""The per-tenant hash chain that makes the audit trail tamper-evident."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import connection

from cot.prepared import execute_prepared

GENESIS_HASH = "0" * 64
# Fields covered by the chain. Adding one later needs a chain version; never remove one.
CHAINED_FIELDS = (
    "tenant_id",
    "seq",
    "timestamp",
    "event",
    "action",
    "actor_id",
    "actor_kind",
    "actor_label",
    "support_grant_id",
    "content_type_id",
    "object_pk",
    "object_repr",
    "changes",
    "additional_data",
    "remote_addr",
    "cid",
)


def _canonical(value: Any) -> Any:
    if hasattr(value, "tzinfo") and hasattr(value, "isoformat"):
        return value.astimezone(UTC).isoformat()
    return value


def canonical_payload(entry: Any) -> bytes:
    """The bytes an entry's hash covers: its chained fields as sorted, compact JSON."""
    data = {name: _canonical(getattr(entry, name)) for name in CHAINED_FIELDS}
    if data["remote_addr"]:
        data["remote_addr"] = str(ipaddress.ip_address(data["remote_addr"]))
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def entry_digest(entry: Any) -> str:
    """HMAC-SHA256 of the previous hash and this entry's payload.

    Keyed with ``AUDIT_CHAIN_KEY``, which lives outside the database, so someone who can
    only write to the database cannot forge a consistent chain after editing a row.
    """
    key = settings.AUDIT_CHAIN_KEY.encode()
    message = entry.prev_hash.encode() + b"\n" + canonical_payload(entry)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def lock_chain(tenant_id: int | None) -> None:
    """Serialise appends to one tenant's chain until the surrounding transaction ends."""
    lock = "SELECT pg_advisory_xact_lock(%s, %s)"
    execute_prepared(connection, "cot_audit_lock_chain", lock, [0x617564, tenant_id or 0])


def verify_chain(entries: Any) -> tuple[Any, str] | None:
    """Walk one tenant's entries in ``seq`` order; return the first broken one and why."""
    prev_hash, expected_seq = GENESIS_HASH, 1
    for entry in entries:
        if entry.seq != expected_seq:
            return entry, f"expected position {expected_seq} but found {entry.seq} (an entry is missing)"
        if entry.prev_hash != prev_hash:
            return entry, "its link to the previous entry does not match"
        if not hmac.compare_digest(entry.entry_hash, entry_digest(entry)):
            return entry, "its content does not match its hash (it was changed)"
        prev_hash, expected_seq = entry.entry_hash, expected_seq + 1
    return None
