"""``cot_analyze_rollout_targets()``: ANALYZE of the targets table for the application role.

PostgreSQL 15 lets only a table's owner run ANALYZE on it, and the application role owns
no table (cot/database/roles.py). The function runs with its owner's rights
(``SECURITY DEFINER``) and does that one thing; the application may execute it.
"""

from django.db import migrations

CREATE = """
CREATE FUNCTION cot_analyze_rollout_targets() RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public
AS 'ANALYZE public.firmware_rollouttarget';
"""
DROP = "DROP FUNCTION cot_analyze_rollout_targets()"


class Migration(migrations.Migration):
    dependencies = [("firmware", "0005_cron_validator")]

    operations = [migrations.RunSQL(CREATE, DROP)]
