"""PostgreSQL itself refuses a reference from one tenant's row to another tenant's, whoever writes it."""

import pytest
from django.apps import apps
from django.db import IntegrityError, connection

from cot.database.constraints import constraint_name
from tenants.isolation import derived_checks
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
