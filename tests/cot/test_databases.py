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
