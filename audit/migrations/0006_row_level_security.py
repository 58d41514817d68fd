"""Row-level security on this app's tenant tables (cot/database/rls.py)."""

from django.db import migrations

from cot.database.rls import row_level_security


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_append_only_without_escape_hatch")]

    operations = [
        row_level_security("audit_auditentry"),
    ]
