"""PostgreSQL itself refuses a reference from one tenant's row to another tenant's, whoever writes it."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from django.apps import apps
from django.db import DatabaseError, IntegrityError, connection, connections, transaction

from cot.database.constraints import constraint_name
from cot.database.scope import tenant_scope
from tenants.isolation import derived_checks, find_cross_tenant_rows
from tests.support import cross_tenant_rows
from tests.support.owner import owner_cursor


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", cross_tenant_rows.REFUSED_BY_CONSTRAINTS)
def test_even_the_owner_cannot_write_a_row_that_ties_two_tenants(case, acme, globex):
    with pytest.raises(IntegrityError, match=r"same_tenant|may not tie two tenants"):
        cross_tenant_rows.REFUSED_BY_CONSTRAINTS[case](acme, globex, owner_cursor)


@pytest.mark.django_db
def test_every_reference_between_tenant_scoped_tables_has_a_same_tenant_key():
    """A new model's foreign key to another tenant-scoped model needs its composite key (or this fails)."""
    user_table = apps.get_model("tenants", "User")._meta.db_table
    # References to users are left out: provider users may be named (see tenants/isolation.py).
    expected = {constraint_name(c.table, c.column) for c in derived_checks() if c.references != user_table}
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname FROM pg_constraint WHERE contype = 'f' AND conname LIKE %s", ["%_same_tenant"])
        present = {name for (name,) in cursor.fetchall()}
    assert expected - present == set()


@contextmanager
def _application_in(tenant: Any, alias: str) -> Iterator[Any]:
    """A cursor as the application, in ``tenant``'s scope, in one transaction committed at the end."""
    with tenant_scope(tenant.pk), transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        yield cursor


@pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])
@pytest.mark.parametrize("scope", ["acme", "globex"])
@pytest.mark.parametrize("case", cross_tenant_rows.REFUSED_BY_CONSTRAINTS)
def test_the_application_in_either_tenants_scope_cannot_write_such_a_row(case, scope, acme, globex):
    """Row-level security hides the other tenant's row from the writer; the checks still see it.

    Refused by a constraint or a policy, or, where the scope hid the row the statement
    meant to change, nothing written at all.
    """
    tenant = {"acme": acme, "globex": globex}[scope]
    writer = partial(_application_in, tenant)
    try:
        cross_tenant_rows.REFUSED_BY_CONSTRAINTS[case](acme, globex, writer)
    except DatabaseError as error:
        assert re.search(r"same_tenant|may not tie two tenants|row-level security", str(error)), error
    else:
        assert find_cross_tenant_rows().findings == []
