"""Remove the session-settable TRUNCATE escape hatch from the append-only trigger function.

0003 let any session that ran ``SET cot.audit_allow_truncate = 'on'`` empty the trail. The
function now refuses every UPDATE, DELETE and TRUNCATE. Test databases get around the
TRUNCATE trigger by disabling it in their own database (``tests/conftest.py``).
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

# The function exactly as 0003 created it.
REVERSE = """
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Test databases set cot.audit_allow_truncate on their own database so that test
    -- isolation can empty the table; production databases never have it.
    IF TG_OP = 'TRUNCATE' AND current_setting('cot.audit_allow_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_auditentry_support_grant_id")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
