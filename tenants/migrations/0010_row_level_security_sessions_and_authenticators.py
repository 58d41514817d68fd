"""Row-level security on support sessions and two-factor authenticators (cot/database/rls.py)."""

from django.db import migrations

from cot.database.rls import row_level_security

USERS_OF_THE_TENANT = "user_id IN (SELECT id FROM tenants_user WHERE tenant_id = cot_tenant())"


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0009_row_level_security"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [
        # A support session is its grant's, so the customer's.
        row_level_security(
            "tenants_supportsession", "grant_id IN (SELECT id FROM tenants_supportgrant WHERE tenant_id = cot_tenant())"
        ),
        # Authenticators (TOTP keys, backup codes) are their user's.
        row_level_security("otp_totp_totpdevice", USERS_OF_THE_TENANT),
        row_level_security("otp_static_staticdevice", USERS_OF_THE_TENANT),
        row_level_security(
            "otp_static_statictoken",
            "device_id IN (SELECT d.id FROM otp_static_staticdevice d"
            " JOIN tenants_user u ON u.id = d.user_id WHERE u.tenant_id = cot_tenant())",
        ),
    ]
