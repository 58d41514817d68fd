"""Row-level security on this app's tenant tables (cot/database/rls.py)."""

from django.db import migrations

from cot.database.rls import row_level_security

USERS_OF_THE_TENANT = "user_id IN (SELECT id FROM tenants_user WHERE tenant_id = cot_tenant())"


class Migration(migrations.Migration):
    dependencies = [("tenants", "0008_tenant_maintenance")]

    operations = [
        row_level_security("tenants_tenant", "id = cot_tenant()"),
        # Operators (their own tenant's scope, marked): every tenant's own row, to list,
        # create and change tenants; never to delete one, nor anything else of theirs.
        migrations.RunSQL(
            "CREATE POLICY cot_operator_reads ON tenants_tenant FOR SELECT USING (cot_operator());"
            " CREATE POLICY cot_operator_creates ON tenants_tenant FOR INSERT WITH CHECK (cot_operator());"
            " CREATE POLICY cot_operator_changes ON tenants_tenant FOR UPDATE"
            " USING (cot_operator()) WITH CHECK (cot_operator());",
            "DROP POLICY cot_operator_reads ON tenants_tenant; DROP POLICY cot_operator_creates ON tenants_tenant;"
            " DROP POLICY cot_operator_changes ON tenants_tenant;",
        ),
        # The provider's id, for the policy below; runs as the owner, who sees every tenant.
        migrations.RunSQL(
            "CREATE FUNCTION cot_provider_tenant() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER"
            " SET search_path = pg_catalog, public, pg_temp"
            " AS $$ SELECT id FROM public.tenants_tenant WHERE kind = 'provider' $$",
            "DROP FUNCTION cot_provider_tenant()",
        ),
        row_level_security("tenants_role"),
        # The provider's support engineers bound to the tenant's own grants are named on its
        # pages: readable (never writable) in the tenant's scope.
        row_level_security(
            "tenants_user",
            readable="tenant_id = cot_provider_tenant() AND id IN (SELECT engineer_id FROM tenants_supportgrant)",
        ),
        row_level_security("tenants_supportgrant"),
        # No tenant column of their own: the tenant is their user's.
        row_level_security("tenants_apitoken", USERS_OF_THE_TENANT),
        row_level_security("tenants_user_groups", USERS_OF_THE_TENANT),
        # The same-tenant trigger must see both tenants whatever the writer's scope.
        migrations.RunSQL(
            "ALTER FUNCTION tenants_user_group_same_tenant_check() SECURITY DEFINER",
            "ALTER FUNCTION tenants_user_group_same_tenant_check() SECURITY INVOKER",
        ),
    ]
