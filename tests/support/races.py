"""Drive a check-then-act race deterministically with two database connections.

The second connection changes a row and keeps its transaction open (so it holds the
row's lock); the action under test runs in a thread with its own connection and
reaches the same row; once PostgreSQL reports that thread waiting for the second
connection's lock, the second connection commits. The action then finds the row as
the other writer left it, which is exactly the interleaving a real race produces.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

WAIT_SECONDS = 30


def race(alias: str, statements: list[tuple[str, list[Any]]], action: Callable[[], Any]) -> Any:
    """Run ``statements`` in a second connection's open transaction, then ``action``; return its outcome.

    Returns what ``action`` returned, or the exception it raised.
    """
    other = connections[alias].get_new_connection(connections[alias].get_connection_params())
    other.autocommit = False
    outcome: queue.Queue[tuple[str, Any]] = queue.Queue()
    pids: queue.Queue[int] = queue.Queue()

    def run() -> None:
        connection = connections[alias]
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.put(cursor.fetchone()[0])
            outcome.put(("value", action()))
        except Exception as exc:
            outcome.put(("error", exc))
        finally:
            for name in connections:
                connections[name].close()

    try:
        with other.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
            cursor.execute("SELECT pg_backend_pid()")
            holder = cursor.fetchone()[0]
        # The action runs with the test's scope (cot.database.scope), as it would in the test's thread.
        thread = threading.Thread(target=contextvars.copy_context().run, args=(run,))
        thread.start()
        waiter = pids.get(timeout=WAIT_SECONDS)
        _wait_until_blocked(alias, waiter, holder)
        other.commit()
        thread.join(WAIT_SECONDS)
        _kind, value = outcome.get(timeout=WAIT_SECONDS)
        return value
    finally:
        other.close()


def _wait_until_blocked(alias: str, waiter: int, holder: int) -> None:
    """Return once ``waiter`` waits for a lock ``holder`` holds (polling PostgreSQL, bounded)."""
    deadline = time.monotonic() + WAIT_SECONDS
    with connections[alias].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT %s = ANY(pg_blocking_pids(%s))", [holder, waiter])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.005)  # polling a condition PostgreSQL reports, not waiting for time to pass
    raise AssertionError(f"backend {waiter} never waited for backend {holder}'s lock")
