"""Row-level security on this app's tenant tables (cot/database/rls.py)."""

from django.db import migrations

from cot.database.rls import row_level_security

GROUPS_OF_THE_TENANT = "content_object_id IN (SELECT id FROM devices_devicegroup WHERE tenant_id = cot_tenant())"


class Migration(migrations.Migration):
    dependencies = [("devices", "0008_same_tenant_references")]

    operations = [
        row_level_security("devices_devicegroup"),
        # Guardian's rows have no tenant column: the tenant is their group's.
        row_level_security("devices_devicegroupuserpermission", GROUPS_OF_THE_TENANT),
        row_level_security("devices_devicegrouprolepermission", GROUPS_OF_THE_TENANT),
        row_level_security("devices_devicetype"),
        row_level_security("devices_device"),
        row_level_security("devices_deviceregistration"),
        row_level_security("devices_operation"),
        row_level_security("devices_payloadpurge"),
        row_level_security("devices_measurement", model_name="measurement"),
        row_level_security("devices_event", model_name="event"),
        row_level_security("devices_alarm", model_name="alarm"),
        row_level_security("devices_operationresult", model_name="operationresult"),
        # The same-tenant triggers must see both tenants whatever the writer's scope.
        migrations.RunSQL(
            "ALTER FUNCTION devices_group_user_right_same_tenant_check() SECURITY DEFINER;"
            " ALTER FUNCTION devices_group_role_right_same_tenant_check() SECURITY DEFINER;",
            "ALTER FUNCTION devices_group_user_right_same_tenant_check() SECURITY INVOKER;"
            " ALTER FUNCTION devices_group_role_right_same_tenant_check() SECURITY INVOKER;",
        ),
    ]
