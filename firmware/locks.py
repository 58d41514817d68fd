"""PostgreSQL advisory locks of the rollout engine, one namespace per kind of work.

Transaction-level (``pg_try_advisory_xact_lock``): released by the commit or rollback
that ends the work, and by PostgreSQL when the connection of a dead worker goes away,
so a lock can never outlive its holder. The two-key form ``(namespace, id)`` keeps these
apart from the audit chain's and the counters' locks.
"""

from __future__ import annotations

from django.db import connection

#: planning one rollout (firmware.services.rollouts.run_planning, the watchdog's probe)
PLANNING = 0x726F6C50  # "rolP"
#: one engine tick of one rollout (firmware.engine.evaluate_rollout)
EVALUATION = 0x726F6C45  # "rolE"
#: the timeout sweep and automatic retries (one sweeper at a time; batches skip locked rows anyway)
SWEEP = 0x726F6C53  # "rolS"

_INT4 = 2**31 - 1


def try_xact_lock(namespace: int, key: int) -> bool:
    """Take the lock ``(namespace, key)`` until the end of the current transaction, if nobody holds it."""
    assert connection.in_atomic_block, "advisory transaction locks need a transaction"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [namespace, key % _INT4])
        return bool(cursor.fetchone()[0])
