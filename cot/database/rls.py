"""Row-level security on tenant tables, for migrations to use (the scope comes from ``cot.database.scope``).

Each tenant table gets ``ENABLE`` and ``FORCE ROW LEVEL SECURITY`` and one policy for
every command: a row is visible, and may be written, when its tenant is the statement's
tenant (``cot_tenant()``), or on a listed cross-tenant path (``cot_all_tenants()``). No
tenant set: no rows. ``FORCE`` holds the owner to the policy too; the owner role of
``migrate`` has ``BYPASSRLS`` (docs/operations.md) because migrations span tenants.

The functions are plain SQL functions, so PostgreSQL inlines them: the policy becomes a
comparison of the indexed ``tenant_id`` with a value computed once per scan.
"""

from __future__ import annotations

from django.db import migrations

POLICY = "cot_tenant_rows"
READ_POLICY = "cot_tenant_rows_readable"

FUNCTIONS = """
CREATE OR REPLACE FUNCTION cot_tenant() RETURNS bigint LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NULLIF(NULLIF(split_part(current_setting('cot.tenant_id', true), '+', 1), ''), '*')::bigint
$$;
CREATE OR REPLACE FUNCTION cot_all_tenants() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('cot.tenant_id', true) = '*', false)
$$;
CREATE OR REPLACE FUNCTION cot_operator() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('cot.tenant_id', true) LIKE '%+tenants', false)
$$;
"""


def row_level_security(
    table: str, condition: str = "tenant_id = cot_tenant()", *, readable: str = "", **hints: str
) -> migrations.RunSQL:
    """Limit ``table`` to the scope's tenant; ``condition`` says which rows are the tenant's (SQL).

    ``readable``: rows of other tenants the scope may read but never write (a second,
    ``SELECT``-only policy; PostgreSQL ORs the policies of a command).
    """
    rows = f"({condition}) OR cot_all_tenants()"
    also_read = f"CREATE POLICY {READ_POLICY} ON {table} FOR SELECT USING ({readable});" if readable else ""
    drop_read = f"DROP POLICY {READ_POLICY} ON {table};" if readable else ""
    return migrations.RunSQL(
        f"""
        {FUNCTIONS}
        ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
        ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
        CREATE POLICY {POLICY} ON {table} USING ({rows}) WITH CHECK ({rows});
        {also_read}
        """,
        f"""
        {drop_read}
        DROP POLICY {POLICY} ON {table};
        ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY;
        ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
        """,
        hints=hints,
    )
