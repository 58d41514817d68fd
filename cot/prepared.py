"""Server-side prepared statements for the device API's hottest queries.

PostgreSQL parses and plans a statement on every plain execution; for the two
statements every single-measurement request runs (device lookup, INSERT) that is a
large share of the server's CPU. Each connection prepares them once. Sessions that lose
their prepared statements behind our back (a transaction-pooling PgBouncer) are not
supported: point cot at PostgreSQL directly or use session pooling.
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

_PREPARED: dict[str, weakref.WeakSet[Any]] = {}


@lru_cache(maxsize=16)
def _statements(name: str, sql: str, arity: int) -> tuple[str, str]:
    first, *rest = sql.split("%s")
    numbered = first + "".join(f"${number}{part}" for number, part in enumerate(rest, start=1))
    arguments = f"({', '.join(['%s'] * arity)})" if arity else ""  # "EXECUTE name()" is a syntax error
    return f"PREPARE {name} AS {numbered}", f"EXECUTE {name}{arguments}"


def execute_prepared(connection: BaseDatabaseWrapper, name: str, sql: str, params: list[Any]) -> Any:
    """Run ``sql`` (``%s`` placeholders) as prepared statement ``name`` on ``connection``; returns the cursor's rows.

    The driver's cursor is used directly: Django's cursor wrapper adds a layer of calls per
    statement that shows on this path. ``wrap_database_errors`` still turns driver errors
    into Django's and marks the connection, so a broken one is replaced on the next request.
    When something observes queries (``CaptureQueriesContext``, ``DEBUG``, execute wrappers
    such as tracing), Django's cursor is used so that they see these statements too.
    """
    prepare, execute = _statements(name, sql, len(params))
    connection.ensure_connection()
    prepared_on = _PREPARED.get(name)
    if prepared_on is None:
        prepared_on = _PREPARED.setdefault(name, weakref.WeakSet())
    observed = connection.queries_logged or connection.execute_wrappers
    cursor = connection.cursor() if observed else connection.connection.cursor()
    with connection.wrap_database_errors, cursor:
        if connection.connection not in prepared_on:
            cursor.execute(prepare)
            prepared_on.add(connection.connection)
        cursor.execute(execute, params)
        return cursor.fetchall() if cursor.description else None
