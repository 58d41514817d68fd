"""Constraints that keep one tenant's rows from pointing at another tenant's, for migrations to use.

A row's foreign key names a row id; a second, composite key ``(tenant_id, <column>)`` →
``(tenant_id, id)`` makes PostgreSQL refuse a reference to a row of another tenant, from
any session and whatever wrote it. The referenced table needs a unique ``(tenant, id)``
(a ``UniqueConstraint`` in the model's ``Meta``). Deferred to the commit, like Django's own
foreign keys, so rows may be written in any order within a transaction.

References without a tenant column of their own (guardian's permission rows, role
memberships) get a trigger instead (``same_tenant_trigger``).
"""

from __future__ import annotations

from django.db import migrations


def constraint_name(table: str, column: str) -> str:
    """The composite key's name (stable: migrations drop it by this name)."""
    return f"{table}_{column}_same_tenant"


def same_tenant_foreign_key(table: str, column: str, referenced: str) -> migrations.RunSQL:
    """``table.column`` may only name a row of ``referenced`` that has the same ``tenant_id``."""
    name = constraint_name(table, column)
    return migrations.RunSQL(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (tenant_id, {column}) "
        f"REFERENCES {referenced} (tenant_id, id) DEFERRABLE INITIALLY DEFERRED",
        f"ALTER TABLE {table} DROP CONSTRAINT {name}",
    )


def same_tenant_trigger(name: str, table: str, condition: str) -> migrations.RunSQL:
    """A constraint trigger on ``table`` that refuses a row for which ``condition`` (SQL over ``NEW``) holds.

    Checked at commit (``DEFERRABLE INITIALLY DEFERRED``), on insert and update. The function
    runs with a fixed ``search_path`` (``pg_temp`` last) and ``condition`` names its tables
    with their schema, so a session cannot shadow them with temporary tables of its own.
    It runs as its owner (``SECURITY DEFINER``; the owner role has ``BYPASSRLS``): under
    row-level security the caller's scope hides the other tenant's row, and the check
    would find nothing to compare.
    """
    function = f"{name}_check"
    return migrations.RunSQL(
        f"""
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = pg_catalog, public, pg_temp AS $$
        BEGIN
            IF {condition} THEN
                RAISE EXCEPTION 'a row of {table} may not tie two tenants together (%)', NEW.id
                    USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER {name} AFTER INSERT OR UPDATE ON {table}
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}();
        """,
        f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {function}();",
    )
