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


def test_renaming_a_device_never_undoes_a_concurrent_block(acme: Any, acme_admin: Any) -> None:
    from devices.services.registry import do_update_device
    from tests.factories import grant, make_group, make_user

    group = make_group(acme)
    device, credential = make_device(acme, group)
    standard = make_user(acme, "standard")
    grant(group, ["view", "change"], user=standard)
    outcome = race(
        "default",
        [("UPDATE devices_device SET status = 'blocked' WHERE id = %s", [device.pk])],
        lambda: do_update_device(device, {"name": "Renamed"}, actor=standard),
    )
    assert not isinstance(outcome, Exception), outcome
    device.refresh_from_db()
    assert (device.name, device.status) == ("Renamed", "blocked")
    heartbeat = device_client(credential).post("/api/device/v1/heartbeat", {}, format="json")
    assert heartbeat.status_code == 403


def test_a_policy_change_never_undoes_a_concurrent_suspension(acme: Any, acme_admin: Any) -> None:
    from tenants.models import Tenant
    from tenants.services import do_update_tenant_policy

    outcome = race(
        "default",
        [("UPDATE tenants_tenant SET status = 'suspended' WHERE id = %s", [acme.pk])],
        lambda: do_update_tenant_policy(acme, {"session_idle_minutes": 45}, actor=acme_admin),
    )
    tenant = Tenant.objects.get(pk=acme.pk)
    assert tenant.status == "suspended"
    # The administrator's change either lost to the suspension (no access any more) or was
    # applied to the suspended tenant; it never reactivated it.
    assert isinstance(outcome, Exception) or tenant.session_idle_minutes == 45


def test_concurrent_guesses_cannot_overdraw_an_addresss_budget(acme: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from cot.database.scope import request_scope
    from devices.services.registration import RegistrationRefused, RegistrationThrottled, device_register

    do_create_registration(external_id="RACE-9", registration_token="right-label-token", actor=None, tenant=acme)

    def guess(n: int) -> str:
        try:
            with request_scope():  # each guess is a request of its own
                device_register(
                    tenant_slug="acme", external_id="RACE-9", registration_token=f"guess-{n}", source="192.0.2.7"
                )
        except RegistrationThrottled:
            return "throttled"
        except RegistrationRefused:
            return "refused"
        finally:
            connections.close_all()
        return "accepted"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(guess, range(20)))
    assert outcomes.count("refused") == 5  # the address's whole budget, compared; no more
    assert outcomes.count("throttled") == 15
    assert DeviceRegistration.objects.get(external_id="RACE-9").failed_attempts == 5
