"""Background jobs on payload data: purge after decommissioning, retention per tenant."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from devices.models import Alarm, Event, Measurement, PayloadPurge
from devices.services.registry import do_decommission_devices
from devices.tasks import enforce_payload_retention, purge_device_payload
from tenants.services import do_update_tenant_policy
from tests.factories import make_device

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def _payload(tenant_id: int, device_id: int, count: int, age: timedelta) -> None:
    when = timezone.now() - age
    Measurement.objects.bulk_create(
        Measurement(tenant_id=tenant_id, device_id=device_id, time=when, type="T", series="t", value=i)
        for i in range(count)
    )
    Event.objects.create(tenant_id=tenant_id, device_id=device_id, time=when, type="boot")


def test_decommission_with_purge_deletes_payload_with_progress(
    acme, acme_admin, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("devices.tasks.BATCH", 7)  # several batches, so progress moves
    device, _ = make_device(acme)
    keep, _ = make_device(acme)
    _payload(acme.pk, device.pk, 20, timedelta(hours=1))
    _payload(acme.pk, keep.pk, 5, timedelta(hours=1))
    Alarm.objects.create(
        tenant_id=acme.pk,
        device_id=device.pk,
        type="hot",
        severity="MAJOR",
        first_time=timezone.now(),
        last_time=timezone.now(),
    )
    queued: list[int] = []
    monkeypatch.setattr(purge_device_payload, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        do_decommission_devices([device.pk], purge=True, actor=acme_admin)
    purge = PayloadPurge.objects.get()
    assert queued == [purge.pk]
    assert (purge.status, purge.progress) == ("queued", 0)
    assert purge_device_payload(purge.pk) == 22
    purge.refresh_from_db()
    assert (purge.status, purge.deleted, purge.total, purge.progress) == ("done", 22, 22, 100)
    assert not Measurement.objects.filter(device_id=device.pk).exists()
    assert Measurement.objects.filter(device_id=keep.pk).count() == 5
    assert purge_device_payload(purge.pk) == 0  # idempotent
    assert AuditEntry.objects.filter(event="device.payload_purged", tenant=acme).exists()


def test_retention_deletes_only_what_is_older_than_each_tenants_policy(acme, globex):
    do_update_tenant_policy(acme, {"payload_retention_days": 7})
    mine, _ = make_device(acme)
    theirs, _ = make_device(globex)  # default retention: 90 days
    _payload(acme.pk, mine.pk, 3, timedelta(days=8))
    _payload(acme.pk, mine.pk, 2, timedelta(days=6))
    _payload(globex.pk, theirs.pk, 4, timedelta(days=8))
    assert enforce_payload_retention() == 4  # 3 measurements and 1 event of acme
    assert Measurement.objects.filter(device_id=mine.pk).count() == 2
    assert Measurement.objects.filter(device_id=theirs.pk).count() == 4
