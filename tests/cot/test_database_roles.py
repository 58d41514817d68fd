"""The application connects as a role that owns nothing; migrations run as the owner and grant it its rights."""

from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction

from cot.database.roles import ROW_PRIVILEGES, limits
from firmware.services.rollouts import _analyze_targets
from tests.support.owner import owner_cursor

ALIASES = ["default", "telemetry"]


def _one(alias: str, sql: str, params: list[Any] | None = None) -> Any:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _privileges(alias: str, table: str) -> set[str]:
    checks = ", ".join(f"has_table_privilege(%s, '{p}')" for p in (*ROW_PRIVILEGES, "TRUNCATE", "REFERENCES"))
    row = _one(alias, f"SELECT {checks}", [table] * (len(ROW_PRIVILEGES) + 2))
    return {name for name, held in zip((*ROW_PRIVILEGES, "TRUNCATE", "REFERENCES"), row, strict=True) if held}


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_the_application_role_is_no_superuser_and_owns_nothing(alias):
    role = _one(
        alias, "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user"
    )
    assert role == (False, False, False, False)
    owned = _one(
        alias,
        """SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
                + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
                + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)
           FROM pg_roles r WHERE rolname = current_user""",
    )
    assert owned == (0,)
    assert _one(alias, "SELECT has_schema_privilege('public', 'CREATE')") == (False,)
    for statement in ("CREATE TABLE cot_smuggled (id int)", "CREATE TEMPORARY TABLE tenants_role (id int)"):
        with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(using=alias):
            _one(alias, statement)


@pytest.mark.django_db(databases=ALIASES)
@pytest.mark.parametrize("alias", ALIASES)
def test_every_table_grants_the_application_rows_only_and_the_limits_hold(alias):
    tables = connections[alias].introspection.table_names()
    limited = limits()
    assert "audit_auditentry" in limited
    for table in tables:
        expected = set(limited.get(table, ROW_PRIVILEGES))
        assert _privileges(alias, table) == expected, table


@pytest.mark.django_db(transaction=True)
def test_migrate_runs_as_the_owner_and_grants_again_what_was_taken_or_added():
    application = _one("default", "SELECT current_user")[0]
    with owner_cursor() as cursor:
        cursor.execute(f"REVOKE INSERT ON devices_device FROM {connection.ops.quote_name(application)}")
        cursor.execute(f"GRANT UPDATE, TRUNCATE ON audit_auditentry TO {connection.ops.quote_name(application)}")
    assert "INSERT" not in _privileges("default", "devices_device")
    assert "UPDATE" in _privileges("default", "audit_auditentry")

    call_command("migrate", database="default", verbosity=0)

    assert _one("default", "SELECT current_user")[0] == application  # back as the application
    assert _privileges("default", "devices_device") == set(ROW_PRIVILEGES)
    assert _privileges("default", "audit_auditentry") == {"SELECT", "INSERT"}


@pytest.mark.django_db
def test_the_targets_table_is_analyzed_through_the_owners_function():
    raw = connections["default"].connection
    raw.notices.clear()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE firmware_rollouttarget")
    # PostgreSQL 15: 'skipping "…" --- only table or database owner can analyze it'; 16+: '… skipping it'.
    assert any("skipping" in notice for notice in raw.notices), raw.notices

    raw.notices.clear()
    _analyze_targets()
    assert raw.notices == []
