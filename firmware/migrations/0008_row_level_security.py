"""Row-level security on this app's tenant tables (cot/database/rls.py)."""

from django.db import migrations

from cot.database.rls import row_level_security


class Migration(migrations.Migration):
    dependencies = [("firmware", "0007_same_tenant_references")]

    operations = [
        row_level_security("firmware_signingkey"),
        row_level_security("firmware_firmwareimage"),
        row_level_security("firmware_firmwareimagetype"),
        row_level_security("firmware_firmwarepolicy"),
        row_level_security("firmware_rollout"),
        row_level_security("firmware_rolloutwave"),
        row_level_security("firmware_rollouttarget"),
        row_level_security("firmware_rolloutcounter"),
    ]
