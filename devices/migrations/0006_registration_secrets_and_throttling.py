"""Every open registration has a token; wrong tokens are throttled, not counted towards a block.

Open registrations created without a token can never be completed safely (the tenant
slug and the printed external id would be enough), so they become ``blocked``; their
external ids are free to be expected again, with a token.
"""

from django.db import migrations, models

BLOCK_TOKENLESS = """
UPDATE devices_deviceregistration SET status = 'blocked'
WHERE status IN ('pending', 'accepted') AND token_digest = ''
"""


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0005_measurement_device_time"),
        ("tenants", "0004_rate_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="deviceregistration",
            name="last_failed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="deviceregistration",
            name="failed_attempts",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AlterField(
            model_name="deviceregistration",
            name="token_digest",
            field=models.CharField(editable=False, max_length=64),
        ),
        migrations.RunSQL(BLOCK_TOKENLESS, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="deviceregistration",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["pending", "accepted"]), _negated=True),
                    models.Q(("token_digest", ""), _negated=True),
                    _connector="OR",
                ),
                name="devices_registration_open_has_token",
            ),
        ),
    ]
