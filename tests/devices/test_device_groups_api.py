"""Device groups over the API: isolation, object rights, and the rights endpoint."""

from typing import Any

import pytest

from audit.models import AuditEntry
from devices.models import DeviceGroup
from tenants.models import Role
from tests.factories import api_client, grant, ids, make_group, make_user
from tests.support.api_isolation import TenantIsolationChecks
from tests.support.group_scope import ApiGroupScopeChecks

pytestmark = pytest.mark.django_db


class TestDeviceGroupIsolation(TenantIsolationChecks, ApiGroupScopeChecks):
    endpoint = "/api/v1/device-groups/"

    def make_object(self, tenant: Any) -> Any:
        return make_group(tenant)

    def make_in_group(self, group: DeviceGroup) -> DeviceGroup:
        return group

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "Plant"}

    def update_payload(self) -> dict[str, Any]:
        return {"name": "Renamed"}

    def test_foreign_group_rights_are_404(self, two_tenants: dict[str, Any]) -> None:
        url = f"{self.detail(two_tenants['foreign'])}rights/"
        assert two_tenants["client"].get(url).status_code == 404
        assert two_tenants["client"].put(url, {"role": 1, "rights": ["view"]}, format="json").status_code == 404


def test_constrained_user_gets_200_for_granted_group_and_404_for_another(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    granted, other = make_group(acme), make_group(acme)
    grant(granted, ["view", "change"], user=user)
    client = api_client(user)
    assert client.get(f"/api/v1/device-groups/{granted.pk}/").status_code == 200
    assert client.get(f"/api/v1/device-groups/{other.pk}/").status_code == 404
    assert ids(client.get("/api/v1/device-groups/")) == {granted.pk}
    assert client.patch(f"/api/v1/device-groups/{granted.pk}/", {"description": "x"}, format="json").status_code == 200
    assert client.patch(f"/api/v1/device-groups/{other.pk}/", {"description": "x"}, format="json").status_code == 404
    # change does not include delete, nor creating groups
    assert client.delete(f"/api/v1/device-groups/{granted.pk}/").status_code == 404
    assert client.post("/api/v1/device-groups/", {"name": "new"}, format="json").status_code == 403


def test_view_only_grant_cannot_change(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    group = make_group(acme)
    grant(group, ["view"], user=user)
    response = api_client(user).patch(f"/api/v1/device-groups/{group.pk}/", {"name": "x"}, format="json")
    assert response.status_code == 404
    group.refresh_from_db()
    assert group.name != "x"


def test_admin_sets_and_lists_rights_and_it_is_audited(acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    group = make_group(acme)
    client = api_client(acme_admin)
    response = client.put(
        f"/api/v1/device-groups/{group.pk}/rights/", {"user": user.pk, "rights": ["view", "change"]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["rights"] == ["change", "view"]
    listed = client.get(f"/api/v1/device-groups/{group.pk}/rights/").json()
    assert listed == [{"user": user.pk, "role": None, "rights": ["change", "view"]}]
    entry = AuditEntry.objects.get(event="rights.set", object_pk=str(group.pk))
    assert entry.actor == acme_admin
    assert entry.actor_kind == "token"
    assert api_client(user).get(f"/api/v1/device-groups/{group.pk}/").status_code == 200


def test_rights_cannot_name_another_tenants_user_or_role(acme, globex, acme_admin):
    group = make_group(acme)
    stranger = make_user(globex, Role.Kind.STANDARD)
    foreign_role = Role.objects.get(tenant=globex, kind=Role.Kind.STANDARD)
    client = api_client(acme_admin)
    url = f"/api/v1/device-groups/{group.pk}/rights/"
    assert client.put(url, {"user": stranger.pk, "rights": ["view"]}, format="json").status_code == 400
    assert client.put(url, {"role": foreign_role.pk, "rights": ["view"]}, format="json").status_code == 400
    assert not AuditEntry.objects.filter(event="rights.set").exists()


def test_only_administrators_manage_rights(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    group = make_group(acme)
    grant(group, ["view", "change"], user=user)
    client = api_client(user)
    url = f"/api/v1/device-groups/{group.pk}/rights/"
    assert client.get(url).status_code == 403
    assert client.put(url, {"user": user.pk, "rights": ["view", "change", "delete"]}, format="json").status_code == 400
    assert set(DeviceGroup.objects.restrict(user, "delete")) == set()


def test_model_changes_are_audited_with_token_actor(acme, acme_admin):
    response = api_client(acme_admin).post("/api/v1/device-groups/", {"name": "Plant"}, format="json")
    assert response.status_code == 201
    entry = AuditEntry.objects.get(
        event="model.create", object_pk=str(response.json()["id"]), content_type__model="devicegroup"
    )
    assert entry.tenant == acme
    assert entry.actor == acme_admin
    assert "via API token cot_pat_" in entry.actor_label
    assert entry.cid  # request id


def test_parent_places_groups_in_a_tree_without_cycles_or_foreign_parents(acme, globex, acme_admin):
    client = api_client(acme_admin)
    root = client.post("/api/v1/device-groups/", {"name": "Germany"}, format="json").json()
    child = client.post("/api/v1/device-groups/", {"name": "Berlin", "parent": root["id"]}, format="json")
    assert child.status_code == 201, child.content
    cycle = client.patch(f"/api/v1/device-groups/{root['id']}/", {"parent": child.json()["id"]}, format="json")
    assert cycle.status_code == 400
    foreign = make_group(globex)
    response = client.post("/api/v1/device-groups/", {"name": "X", "parent": foreign.pk}, format="json")
    assert response.status_code == 400
    assert "parent" in response.json()


def test_standard_user_cannot_take_devices_out_of_every_group(acme):
    from tests.factories import make_device

    group = make_group(acme)
    device, _ = make_device(acme, group=group)
    user = make_user(acme, Role.Kind.STANDARD)
    grant(group, ["view", "change"], user=user)
    response = api_client(user).post(
        "/api/v1/devices/bulk/move/", {"devices": [device.pk], "group": None}, format="json"
    )
    assert response.status_code == 400
    device.refresh_from_db()
    assert device.group == group


def test_device_changes_are_audited(acme, acme_admin):
    from tests.factories import make_device

    device, _ = make_device(acme)
    api_client(acme_admin).patch(f"/api/v1/devices/{device.pk}/", {"name": "Pump 7"}, format="json")
    entry = AuditEntry.objects.filter(
        event="model.update", content_type__model="device", object_pk=str(device.pk)
    ).get()
    assert entry.changes["name"][1] == "Pump 7"
    assert entry.actor == acme_admin
