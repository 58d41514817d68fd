"""Row-level security on the rules and deliveries, and deliveries tied to a rule of their own tenant."""

from django.db import migrations

from cot.database.constraints import same_tenant_foreign_key
from cot.database.rls import row_level_security


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [
        row_level_security("notifications_notificationrule"),
        row_level_security("notifications_delivery"),
        same_tenant_foreign_key("notifications_delivery", "rule_id", "notifications_notificationrule"),
    ]
