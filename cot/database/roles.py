"""Two database roles: the owner of the schema and the application's role.

The **owner** (``MIGRATION_DATABASE_URL``, ``TELEMETRY_MIGRATION_DATABASE_URL``) creates
and alters the tables: ``migrate`` and ``flush`` switch to it for their run (see this
app's commands). The **application** (``DATABASE_URL``, ``TELEMETRY_DATABASE_URL``)
serves requests, runs jobs and commands: it owns no table, so it cannot switch off a
trigger, change a table or skip row-level security, and it may only read and write rows,
less where an app limits it (``limit``: the audit trail is ``SELECT`` and ``INSERT``
only). After every migration the owner grants exactly that (``grant_to_application``).

Where both URLs name the same role (a deployment from before the split), nothing is
switched and nothing granted: the application is the owner, as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

# What the owner's URL replaces in a connection's settings; the database's name stays, so
# the same switch serves a test database (``test_cot``).
CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT")
ROW_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
_LIMITS: dict[str, tuple[str, ...]] = {}


def limit(table: str, privileges: tuple[str, ...]) -> None:
    """Let the application role do only ``privileges`` on ``table`` (each app registers its own in ``ready()``)."""
    unknown = set(privileges) - set(ROW_PRIVILEGES)
    if unknown:
        raise ValueError(f"Not a row privilege: {', '.join(sorted(unknown))}")
    _LIMITS[table] = privileges


def limits() -> dict[str, tuple[str, ...]]:
    """The registered limits, table → the privileges the application keeps."""
    return dict(_LIMITS)


def owner_settings(alias: str) -> dict[str, object] | None:
    """The owner's credentials for ``alias``, or None where the application is the owner (the same user)."""
    owner = settings.MIGRATION_DATABASES.get(alias)
    if owner is None or owner.get("USER") == connections[alias].settings_dict.get("USER"):
        return None
    return {key: owner.get(key) for key in CREDENTIALS}


@contextmanager
def as_owner(alias: str) -> Iterator[str | None]:
    """Connect ``alias`` as the owner inside the block; yields the application's role (None if they are one).

    The connection is closed before and after, so no statement of the block runs as the
    application and none after it as the owner. Not inside a transaction: closing would
    lose it.
    """
    owner = owner_settings(alias)
    if owner is None:
        yield None
        return
    with connected_as(alias, owner) as application:
        yield application


@contextmanager
def connected_as(alias: str, credentials: dict[str, object]) -> Iterator[str]:
    """Connect ``alias`` with ``credentials`` (some of ``CREDENTIALS``) inside the block; yields the previous user."""
    connection = connections[alias]
    if connection.in_atomic_block:
        raise RuntimeError("Switching the database role would end the open transaction.")
    application = {key: connection.settings_dict.get(key) for key in CREDENTIALS}
    connection.close()
    connection.settings_dict.update(credentials)
    try:
        yield str(application["USER"])
    finally:
        connection.close()
        connection.settings_dict.update(application)


def grant_to_application(connection: BaseDatabaseWrapper, role: str) -> None:
    """As the owner: the application's privileges on every table, sequence and function of the schema.

    Idempotent; run after every migration, so new tables are covered and a limit added
    later takes effect. Revoking first makes a limit take back what an earlier grant gave.
    """
    quote = connection.ops.quote_name
    grantee = quote(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {grantee}",
        # No temporary tables: one could shadow a table that a function names without its schema.
        f"REVOKE TEMPORARY ON DATABASE {quote(connection.settings_dict['NAME'])} FROM PUBLIC, {grantee}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {grantee}",
        f"GRANT {', '.join(ROW_PRIVILEGES)} ON ALL TABLES IN SCHEMA public TO {grantee}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {grantee}",
        # Functions the owner defines (SECURITY DEFINER ones act with the owner's rights):
        # only the application may call them, not every role of the cluster.
        "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {grantee}",
    ]
    tables = set(connection.introspection.table_names())
    for table, privileges in sorted(_LIMITS.items()):
        if table in tables:
            statements.append(f"REVOKE ALL ON {quote(table)} FROM {grantee}")
            statements.append(f"GRANT {', '.join(privileges)} ON {quote(table)} TO {grantee}")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
