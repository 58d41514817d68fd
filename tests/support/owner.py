"""Raw SQL as the schema's owner or as a superuser: what someone holding those accounts could do.

The tests connect as the application's role, which owns no table (cot/database/roles.py).
These helpers reconnect as another role for one block; the block cannot see the test's
uncommitted rows, so tests that use them are ``transaction=True``.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections, transaction

from cot.database.roles import as_owner, connected_as

AUDIT_ROW_TRIGGER = "audit_entry_no_update_delete"


@contextmanager
def owner_cursor(alias: str = "default") -> Iterator[Any]:
    """A cursor on ``alias`` as its owner, in one transaction committed at the end."""
    with as_owner(alias) as application:
        assert application is not None, "the tests need the owner role apart (MIGRATION_DATABASE_URL)"
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            yield cursor


@contextmanager
def superuser_cursor(alias: str = "default") -> Iterator[Any]:
    """A cursor on ``alias`` as a database superuser with every trigger off (foreign keys too), committed at the end.

    ``COT_TEST_SUPERUSER`` names the role (scripts/test.sh sets it to its cluster's ``cot``).
    """
    superuser = os.environ.get("COT_TEST_SUPERUSER")
    assert superuser, "set COT_TEST_SUPERUSER to a superuser of the test cluster (scripts/test.sh does)"
    as_superuser = connected_as(alias, {"USER": superuser, "PASSWORD": ""})
    with as_superuser, transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
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
