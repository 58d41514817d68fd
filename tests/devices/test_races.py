"""State transitions are guarded in the UPDATE itself: a concurrent writer's change is never overwritten.

Each test lets a second connection change the row (as the device or another user would)
while the service is between its check and its write, using ``tests.support.races``.
"""

from typing import Any

import pytest

from cot.exceptions import Conflict
from devices.models import Alarm, DeviceRegistration, Operation
from devices.services.registration import do_accept_registration, do_create_registration
from devices.services.registry import do_cancel_operation, do_create_operation, do_set_alarm_status
from tests.factories import device_client, make_device
from tests.support.races import race

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])


def test_accepting_never_flips_back_a_registration_the_device_just_completed(acme: Any, acme_admin: Any) -> None:
    registration = do_create_registration(external_id="RACE-1", actor=None, tenant=acme).registration
    outcome = race(
        "default",
        [("UPDATE devices_deviceregistration SET status = 'completed' WHERE id = %s", [registration.pk])],
        lambda: do_accept_registration(registration, actor=acme_admin),
    )
    assert isinstance(outcome, Conflict)
    assert DeviceRegistration.objects.get(pk=registration.pk).status == "completed"


def test_cancelling_never_overwrites_the_devices_report(acme: Any, acme_admin: Any) -> None:
    device, _ = make_device(acme)
    operation = do_create_operation(device, kind="restart", parameters={}, actor=acme_admin)
    outcome = race(
        "default",
        [("UPDATE devices_operation SET status = 'SUCCESSFUL' WHERE id = %s", [operation.pk])],
        lambda: do_cancel_operation(operation, actor=acme_admin),
    )
    assert isinstance(outcome, Conflict)
    assert Operation.objects.get(pk=operation.pk).status == "SUCCESSFUL"


def test_acknowledging_an_alarm_cleared_meanwhile_is_a_conflict_not_a_500(acme: Any, acme_admin: Any) -> None:
    device, credential = make_device(acme)
    raised = device_client(credential).post(
        "/api/device/v1/alarms", {"type": "overheat", "severity": "MAJOR"}, format="json"
    )
    alarm_id = raised.json()["alarms"][0]["id"]
    outcome = race(
        "telemetry",
        [
            # Someone clears the alarm and the device raises the same type again, as a new open alarm.
            ("UPDATE devices_alarm SET status = 'CLEARED' WHERE id = %s", [alarm_id]),
            (
                "INSERT INTO devices_alarm (tenant_id, device_id, type, severity, status, text, count, first_time,"
                " last_time, updated_at) SELECT tenant_id, device_id, type, severity, 'ACTIVE', text, 1, now(),"
                " now(), now() FROM devices_alarm WHERE id = %s",
                [alarm_id],
            ),
        ],
        lambda: do_set_alarm_status(alarm_id, Alarm.Status.ACKNOWLEDGED, actor=acme_admin),
    )
    assert isinstance(outcome, Conflict), outcome
    assert Alarm.objects.get(pk=alarm_id).status == "CLEARED"
    assert Alarm.objects.filter(device_id=device.pk, status="ACTIVE").count() == 1
