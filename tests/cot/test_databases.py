"""Customer data and payload data live in two stores that cannot be joined."""

import pytest
from django.db import connections

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])

PAYLOAD_TABLES = {"devices_measurement", "devices_event", "devices_alarm", "devices_operationresult"}


def _tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        return set(connections[alias].introspection.table_names(cursor))


def test_payload_tables_exist_only_in_the_telemetry_database():
    default, telemetry = _tables("default"), _tables("telemetry")
    assert telemetry >= PAYLOAD_TABLES
    assert not PAYLOAD_TABLES & default
    assert not {"tenants_user", "tenants_tenant", "audit_auditentry", "devices_device"} & telemetry


def test_payload_database_commits_asynchronously_and_customer_data_synchronously():
    seen = {}
    for alias in ("default", "telemetry"):
        with connections[alias].cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            seen[alias] = cursor.fetchone()[0]
    assert seen == {"default": "on", "telemetry": "off"}


@pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])
def test_prepared_statements_survive_a_new_connection():
    from cot.prepared import execute_prepared

    connection = connections["default"]
    assert execute_prepared(connection, "cot_test_add", "SELECT %s::int + %s::int", [2, 3]) == [(5,)]
    assert execute_prepared(connection, "cot_test_add", "SELECT %s::int + %s::int", [4, 5]) == [(9,)]
    connection.close()  # a reconnect loses the session's prepared statements
    assert execute_prepared(connection, "cot_test_add", "SELECT %s::int + %s::int", [1, 1]) == [(2,)]


@pytest.mark.django_db
def test_a_prepared_statement_may_take_no_parameters():
    from cot.prepared import execute_prepared

    assert execute_prepared(connections["default"], "cot_test_constant", "SELECT 42", []) == [(42,)]
