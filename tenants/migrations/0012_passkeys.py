"""Passkeys: the tenant's "require passkeys" policy, and row-level security on django-otp-webauthn's tables."""

from django.db import migrations, models

from cot.database.rls import row_level_security

USERS_OF_THE_TENANT = "user_id IN (SELECT id FROM tenants_user WHERE tenant_id = cot_tenant())"


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0011_support_grant_device_groups"),
        ("django_otp_webauthn", "0004_webauthnuserhandle"),
    ]

    operations = [
        migrations.AddField(
            model_name="tenant",
            name="require_passkeys",
            field=models.BooleanField(
                default=False,
                help_text="Authenticator-app codes and backup codes then only confirm the enrolment of a first passkey.",
                verbose_name="require passkeys as the second factor",
            ),
        ),
        # A passkey, its attestation and the user handle it was made for are their user's.
        row_level_security("django_otp_webauthn_webauthncredential", USERS_OF_THE_TENANT),
        row_level_security("django_otp_webauthn_webauthnuserhandle", USERS_OF_THE_TENANT),
        row_level_security(
            "django_otp_webauthn_webauthnattestation",
            "credential_id IN (SELECT c.id FROM django_otp_webauthn_webauthncredential c"
            " JOIN tenants_user u ON u.id = c.user_id WHERE u.tenant_id = cot_tenant())",
        ),
    ]
