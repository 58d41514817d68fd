"""One device's measurements newest first without reading the device's whole history.

Built concurrently: on a live telemetry database the table keeps taking measurements
while the index is built.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("devices", "0004_payload_purge"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="measurement",
            index=models.Index(fields=["device_id", "time"], name="telemetry_meas_device_time"),
        ),
    ]
