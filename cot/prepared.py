"""Server-side prepared statements for the device API's hottest queries.

PostgreSQL parses and plans a statement on every plain execution; for the two
statements every single-measurement request runs (device lookup, INSERT) that is a
large share of the server's CPU. Each connection prepares them once. Sessions that lose
their prepared statements behind our back (a transaction-pooling PgBouncer) are not
supported: point cot at PostgreSQL directly or use session pooling.
"""

from __future__ import annotations

import weakref
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

_PREPARED: dict[str, weakref.WeakSet[Any]] = {}


def execute_prepared(connection: BaseDatabaseWrapper, name: str, sql: str, params: list[Any]) -> Any:
    """Run ``sql`` (``%s`` placeholders) as prepared statement ``name`` on ``connection``; returns the cursor's rows."""
    connection.ensure_connection()
    prepared_on = _PREPARED.setdefault(name, weakref.WeakSet())
    with connection.cursor() as cursor:
        if connection.connection not in prepared_on:
            first, *rest = sql.split("%s")
            numbered = first + "".join(f"${number}{part}" for number, part in enumerate(rest, start=1))
            cursor.execute(f"PREPARE {name} AS {numbered}")
            prepared_on.add(connection.connection)
        cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params)
        return cursor.fetchall() if cursor.description else None
