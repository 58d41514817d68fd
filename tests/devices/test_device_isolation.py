"""Cross-tenant denial for every device endpoint, and object rights inherited from groups."""

import json
from typing import Any

import pytest

from devices.models import Alarm, DeviceGroup, DeviceRegistration, DeviceType, Event, Measurement, Operation
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_device_type, do_create_operation
from tenants.models import Role
from tests.factories import api_client, device_client, grant, ids, make_device, make_group, make_user
from tests.support.api_isolation import TenantIsolationChecks
from tests.support.group_scope import ApiGroupScopeChecks

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def _admin(tenant: Any) -> Any:
    return make_user(tenant, Role.Kind.ADMINISTRATOR)


def _send(credential: str, path: str, payload: Any) -> None:
    response = device_client(credential).post(
        f"/api/device/v1/{path}", json.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 201, response.content


def _payload_in_group(group: DeviceGroup, path: str, payload: Any, model: Any) -> Any:
    """One payload row of a new device in ``group``, sent through the device API."""
    device, credential = make_device(group.tenant, group)
    _send(credential, path, payload)
    return model.objects.get(device_id=device.pk)


class TestDeviceTypeIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/device-types/"

    def make_object(self, tenant: Any) -> DeviceType:
        return do_create_device_type(manufacturer="ACME", model="X1", actor=None, tenant=tenant)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"manufacturer": "ACME", "model": "X2"}


class TestDeviceIsolation(TenantIsolationChecks, ApiGroupScopeChecks):
    endpoint = "/api/v1/devices/"

    def make_object(self, tenant: Any) -> Any:
        return make_device(tenant)[0]

    def make_in_group(self, group: DeviceGroup) -> Any:
        return make_device(group.tenant, group)[0]

    def update_payload(self) -> dict[str, Any]:
        return {"name": "renamed"}

    def test_foreign_group_is_rejected_on_update(self, two_tenants: dict[str, Any]) -> None:
        mine = make_device(two_tenants["home"])[0]
        foreign_group = make_group(two_tenants["other"])
        response = two_tenants["client"].patch(f"{self.endpoint}{mine.pk}/", {"group": foreign_group.pk}, format="json")
        assert response.status_code == 400
        assert "group" in response.json()

    def test_foreign_devices_are_refused_in_bulk_actions(self, two_tenants: dict[str, Any]) -> None:
        foreign = two_tenants["foreign"]
        for action in ("move", "block", "decommission"):
            response = two_tenants["client"].post(
                f"{self.endpoint}bulk/{action}/", {"devices": [foreign.pk]}, format="json"
            )
            assert response.status_code == 400, action
        foreign.refresh_from_db()
        assert foreign.status == "active"

    def test_foreign_device_credential_cannot_be_rotated(self, two_tenants: dict[str, Any]) -> None:
        url = f"{self.endpoint}{two_tenants['foreign'].pk}/credential/rotate/"
        assert two_tenants["client"].post(url).status_code == 404


class TestRegistrationIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/registrations/"
    foreign_keys = {"group": make_group}

    def make_object(self, tenant: Any) -> DeviceRegistration:
        return do_create_registration(external_id="EXP-1", actor=None, tenant=tenant).registration

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"external_id": "EXP-2"}

    def test_foreign_registration_cannot_be_accepted(self, two_tenants: dict[str, Any]) -> None:
        foreign = two_tenants["foreign"]
        assert two_tenants["client"].post(f"{self.endpoint}{foreign.pk}/accept/").status_code == 404
        foreign.refresh_from_db()
        assert foreign.status == "pending"


class TestOperationIsolation(TenantIsolationChecks, ApiGroupScopeChecks):
    endpoint = "/api/v1/operations/"
    foreign_keys = {"device": lambda tenant: make_device(tenant)[0]}

    def make_object(self, tenant: Any) -> Operation:
        return do_create_operation(make_device(tenant)[0], kind="restart", parameters={}, actor=_admin(tenant))

    def make_in_group(self, group: DeviceGroup) -> Operation:
        device = make_device(group.tenant, group)[0]
        return do_create_operation(device, kind="restart", parameters={}, actor=_admin(group.tenant))

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"device": make_device(tenant)[0].pk, "kind": "restart"}

    def test_foreign_operation_cannot_be_cancelled(self, two_tenants: dict[str, Any]) -> None:
        assert two_tenants["client"].post(f"{self.endpoint}{two_tenants['foreign'].pk}/cancel/").status_code == 404


class TestMeasurementIsolation(TenantIsolationChecks, ApiGroupScopeChecks):
    endpoint = "/api/v1/measurements/"

    def make_object(self, tenant: Any) -> Measurement:
        _, credential = make_device(tenant)
        _send(credential, "measurements", {"type": "T", "series": "t", "value": 1})
        return Measurement.objects.filter(tenant_id=tenant.pk).get()

    def make_in_group(self, group: DeviceGroup) -> Measurement:
        return _payload_in_group(group, "measurements", {"type": "T", "series": "t", "value": 1}, Measurement)


class TestEventIsolation(TenantIsolationChecks, ApiGroupScopeChecks):
    endpoint = "/api/v1/events/"

    def make_object(self, tenant: Any) -> Event:
        _, credential = make_device(tenant)
        _send(credential, "events", {"type": "boot", "text": "hello"})
        return Event.objects.filter(tenant_id=tenant.pk).get()

    def make_in_group(self, group: DeviceGroup) -> Event:
        return _payload_in_group(group, "events", {"type": "boot", "text": "hello"}, Event)


class TestAlarmIsolation(TenantIsolationChecks, ApiGroupScopeChecks):
    endpoint = "/api/v1/alarms/"

    def make_object(self, tenant: Any) -> Alarm:
        _, credential = make_device(tenant)
        _send(credential, "alarms", {"type": "hot", "severity": "MAJOR"})
        return Alarm.objects.filter(tenant_id=tenant.pk).get()

    def make_in_group(self, group: DeviceGroup) -> Alarm:
        return _payload_in_group(group, "alarms", {"type": "hot", "severity": "MAJOR"}, Alarm)

    def test_foreign_alarm_cannot_be_acknowledged(self, two_tenants: dict[str, Any]) -> None:
        foreign = two_tenants["foreign"]
        url = f"{self.endpoint}{foreign.pk}/status/"
        assert two_tenants["client"].post(url, {"status": "ACKNOWLEDGED"}, format="json").status_code == 404
        foreign.refresh_from_db()
        assert foreign.status == "ACTIVE"


def test_devices_and_their_payload_follow_group_rights(acme):
    granted, other = make_group(acme), make_group(acme)
    mine, mine_credential = make_device(acme, group=granted)
    theirs, theirs_credential = make_device(acme, group=other)
    for credential in (mine_credential, theirs_credential):
        _send(credential, "measurements", {"type": "T", "series": "t", "value": 1})
        _send(credential, "alarms", {"type": "hot", "severity": "MINOR"})
    user = make_user(acme, Role.Kind.STANDARD)
    grant(granted, ["view"], user=user)
    client = api_client(user)
    assert ids(client.get("/api/v1/devices/")) == {mine.pk}
    assert client.get(f"/api/v1/devices/{mine.pk}/").status_code == 200
    assert client.get(f"/api/v1/devices/{theirs.pk}/").status_code == 404
    assert {row["device"] for row in client.get("/api/v1/measurements/").json()["results"]} == {mine.pk}
    alarms = client.get("/api/v1/alarms/").json()["results"]
    assert {row["device"] for row in alarms} == {mine.pk}
    # view only: no acknowledging, no operations, no renaming
    assert (
        client.post(f"/api/v1/alarms/{alarms[0]['id']}/status/", {"status": "CLEARED"}, format="json").status_code
        == 404
    )
    assert client.post("/api/v1/operations/", {"device": mine.pk, "kind": "restart"}, format="json").status_code == 404
    assert client.patch(f"/api/v1/devices/{mine.pk}/", {"name": "x"}, format="json").status_code == 404


def test_standard_user_with_change_operates_and_acknowledges(acme):
    group = make_group(acme)
    device, credential = make_device(acme, group=group)
    _send(credential, "alarms", {"type": "hot", "severity": "MINOR"})
    user = make_user(acme, Role.Kind.STANDARD)
    grant(group, ["view", "change"], user=user)
    client = api_client(user)
    assert (
        client.post("/api/v1/operations/", {"device": device.pk, "kind": "restart"}, format="json").status_code == 201
    )
    alarm = Alarm.objects.get()
    assert (
        client.post(f"/api/v1/alarms/{alarm.pk}/status/", {"status": "ACKNOWLEDGED"}, format="json").status_code == 200
    )
    assert (
        client.post(f"/api/v1/alarms/{alarm.pk}/status/", {"status": "ACKNOWLEDGED"}, format="json").status_code == 409
    )  # the alarm's state forbids it: a conflict, not bad input
    assert client.post(f"/api/v1/alarms/{alarm.pk}/status/", {"status": "CLEARED"}, format="json").status_code == 200
    # a cleared alarm type starts a new alarm next time
    _send(credential, "alarms", {"type": "hot", "severity": "MINOR"})
    assert Alarm.objects.count() == 2


def test_csv_registration_is_all_or_nothing_with_line_errors(acme, acme_admin):
    group = make_group(acme)
    client = api_client(acme_admin)
    bad = f"external_id,group\nA-1,{group.pk}\nA-2,999999\nA-1,{group.pk}\n"
    response = client.post("/api/v1/registrations/csv/", {"csv": bad}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"line 3", "line 4"}
    assert not DeviceRegistration.objects.exists()
    good = f"external_id,registration_token,group\nA-1,label-token-0001,{group.pk}\nA-2,,\n"
    response = client.post("/api/v1/registrations/csv/", {"csv": good}, format="json")
    assert response.status_code == 201
    assert DeviceRegistration.objects.filter(tenant=acme).count() == 2
    tokens = {row["external_id"]: row["registration_token"] for row in response.json()}
    assert tokens["A-1"] == "label-token-0001" and tokens["A-2"].startswith("cot_reg_")
    listed = client.get("/api/v1/registrations/").json()["results"]
    assert all("registration_token" not in row for row in listed)  # shown once


def test_certified_only_policy_refuses_uncertified_types(acme, acme_admin):
    from tenants.services import do_update_tenant_policy

    do_update_tenant_policy(acme, {"certified_devices_only": True})
    plain = do_create_device_type(manufacturer="X", model="plain", actor=None, tenant=acme)
    certified = do_create_device_type(manufacturer="X", model="cert", certified=True, actor=None, tenant=acme)
    client = api_client(acme_admin)
    assert (
        client.post("/api/v1/registrations/", {"external_id": "C-1", "type": plain.pk}, format="json").status_code
        == 400
    )
    assert client.post("/api/v1/registrations/", {"external_id": "C-2"}, format="json").status_code == 400
    assert (
        client.post("/api/v1/registrations/", {"external_id": "C-3", "type": certified.pk}, format="json").status_code
        == 201
    )


def test_device_list_filters(acme, acme_admin):
    group = make_group(acme)
    in_group, credential = make_device(acme, group=group)
    make_device(acme)
    _send(credential, "measurements", {"type": "T", "series": "t", "value": 1})  # seen now: online
    client = api_client(acme_admin)
    assert ids(client.get(f"/api/v1/devices/?group={group.pk}")) == {in_group.pk}
    assert ids(client.get("/api/v1/devices/?online=true")) == {in_group.pk}
    assert in_group.pk not in ids(client.get("/api/v1/devices/?online=false"))
    assert ids(client.get(f"/api/v1/devices/?search={in_group.external_id}")) == {in_group.pk}


def test_block_and_unblock(acme, acme_admin):
    device, credential = make_device(acme)
    client = api_client(acme_admin)
    assert client.post("/api/v1/devices/bulk/block/", {"devices": [device.pk]}, format="json").json() == {"blocked": 1}
    heartbeat = device_client(credential).post("/api/device/v1/heartbeat", "{}", content_type="application/json")
    assert heartbeat.status_code == 403
    assert client.post(f"/api/v1/devices/{device.pk}/unblock/").status_code == 200
    assert client.post(f"/api/v1/devices/{device.pk}/unblock/").status_code == 409
    heartbeat = device_client(credential).post("/api/device/v1/heartbeat", "{}", content_type="application/json")
    assert heartbeat.status_code == 200


def test_odd_csv_files_get_a_clear_400_not_a_500(acme, acme_admin):
    client = api_client(acme_admin)
    for text in (
        "external_id\n" + "x" * 200_000 + "\n",  # a field beyond the csv module's limit
        'external_id\n"unterminated\n',
        "external_id\nSN\x00-1\n",
        "external_id,registration_token\n-SN-2,label-token-0002\n",  # would turn into '-SN-2 in a download
        "external_id,registration_token\nSN-3,=cmd|' /C calc'!A0\n",
    ):
        response = client.post("/api/v1/registrations/csv/", {"csv": text}, format="json")
        assert response.status_code in (400, 413), (text[:40], response.status_code)
    assert not DeviceRegistration.objects.filter(tenant=acme).exists()
