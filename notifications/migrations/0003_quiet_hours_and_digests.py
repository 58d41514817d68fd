"""Quiet hours and digests of notification rules (notifications.batching)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_row_level_security"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="batch_at",
            field=models.DateTimeField(
                blank=True, help_text="Held for a digest or quiet hours: sent with the rule's others then.", null=True
            ),
        ),
        migrations.AddField(
            model_name="notificationrule",
            name="critical_breaks_quiet",
            field=models.BooleanField(default=True, verbose_name="critical alarms break through quiet hours"),
        ),
        migrations.AddField(
            model_name="notificationrule",
            name="digest_minutes",
            field=models.PositiveIntegerField(
                blank=True,
                choices=[
                    (0, "off (one message each)"),
                    (15, "every 15 minutes"),
                    (60, "hourly"),
                    (240, "every 4 hours"),
                    (1440, "daily"),
                ],
                default=0,
                help_text="Collect notifications into one message this often.",
                verbose_name="digest",
            ),
        ),
        migrations.AddField(
            model_name="notificationrule",
            name="quiet_from",
            field=models.TimeField(blank=True, help_text="Quiet hours start (local time); empty: none.", null=True),
        ),
        migrations.AddField(
            model_name="notificationrule",
            name="quiet_timezone",
            field=models.CharField(
                blank=True, default="UTC", help_text="IANA time zone, e.g. Europe/Berlin; empty: UTC.", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="notificationrule",
            name="quiet_until",
            field=models.TimeField(blank=True, help_text="Quiet hours end; what was held is sent then.", null=True),
        ),
    ]
