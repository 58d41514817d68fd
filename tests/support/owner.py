"""Raw SQL as the schema's owner: what someone holding the migration account could do.

The tests connect as the application's role, which owns no table (cot/database/roles.py).
These helpers reconnect as the owner for one block; the block cannot see the test's
uncommitted rows, so tests that use them are ``transaction=True``.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction

from cot.database.roles import as_owner

AUDIT_ROW_TRIGGER = "audit_entry_no_update_delete"


@contextmanager
def owner_cursor() -> Iterator[Any]:
    """A cursor on the default database as its owner, in one transaction committed at the end."""
    with as_owner("default") as application:
        assert application is not None, "the tests need the owner role apart (MIGRATION_DATABASE_URL)"
        with transaction.atomic(), connection.cursor() as cursor:
            yield cursor


def tamper_with_audit(*statements: tuple[str, list[Any]]) -> None:
    """Run ``statements`` with the audit table's append-only row trigger switched off, as its owner can."""
    with owner_cursor() as cursor:
        # Foreign keys checked as each statement runs: ALTER TABLE refuses while checks are pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE audit_auditentry DISABLE TRIGGER {AUDIT_ROW_TRIGGER}")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE audit_auditentry ENABLE TRIGGER {AUDIT_ROW_TRIGGER}")
