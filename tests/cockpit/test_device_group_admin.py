"""Cockpit: device groups and the rights page, through devices.services."""

from typing import Any

import pytest

from audit.models import AuditEntry
from devices.models import DeviceGroup
from devices.services import rights_on
from tenants.models import Role
from tenants.services import builtin_role
from tests.cockpit.helpers import admin_url, cockpit_client, object_url, row_state
from tests.cockpit.isolation import AdminIsolationChecks, Scene
from tests.factories import grant, make_group, make_user

pytestmark = pytest.mark.django_db


class TestDeviceGroupAdminIsolation(AdminIsolationChecks):
    model = DeviceGroup
    autocomplete_through = "devices.devicegroupuserpermission.content_object"

    def make_object(self, tenant: Any) -> Any:
        return make_group(tenant)

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "Munich plant", "description": "line 3"}

    def test_foreign_rights_page_is_404(self, scene: Scene) -> None:
        url = object_url(scene.foreign, "rights")
        member = make_user(scene.home, Role.Kind.STANDARD)
        assert scene.client.get(url).status_code == 404
        assert scene.client.post(url, {"user": member.pk, "rights": ["view"]}).status_code == 404
        assert rights_on(scene.foreign) == []

    def test_foreign_holders_are_rejected_on_rights_page(self, scene: Scene) -> None:
        url = object_url(scene.own, "rights")
        outsiders = {"user": make_user(scene.other, Role.Kind.STANDARD), "role": builtin_role(scene.other, "standard")}
        for field, outsider in outsiders.items():
            response = scene.client.post(url, {field: outsider.pk, "rights": ["view"]})
            assert response.status_code == 200
            assert field in response.context["form"].errors
        assert rights_on(scene.own) == []

    def test_foreign_holders_are_not_offered(self, scene: Scene) -> None:
        outsider = make_user(scene.other, Role.Kind.STANDARD)
        form = scene.client.get(object_url(scene.own, "rights")).context["form"]
        assert outsider not in form.fields["user"].queryset
        assert not form.fields["role"].queryset.filter(tenant=scene.other).exists()


@pytest.fixture
def client(acme_admin: Any) -> Any:
    return cockpit_client(acme_admin)


def test_create_change_delete(client, acme, acme_admin):
    assert client.post(admin_url(DeviceGroup, "add"), {"name": "Plant", "description": ""}).status_code == 302
    group = DeviceGroup.objects.get(tenant=acme, name="Plant")
    assert client.post(object_url(group), {"name": "Plant 2", "description": "north"}).status_code == 302
    group.refresh_from_db()
    assert (group.name, group.description) == ("Plant 2", "north")
    update = AuditEntry.objects.get(event="model.update", object_pk=str(group.pk))
    assert update.actor == acme_admin and update.changes["name"] == ["Plant", "Plant 2"]
    assert client.post(object_url(group, "delete"), {"post": "yes"}).status_code == 302
    assert not DeviceGroup.objects.filter(pk=group.pk).exists()
    assert AuditEntry.objects.get(event="model.delete", object_pk=str(group.pk)).actor == acme_admin


def test_duplicate_name_is_a_form_error(client, acme):
    make_group(acme, "Plant")
    response = client.post(admin_url(DeviceGroup, "add"), {"name": "Plant", "description": ""})
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert DeviceGroup.objects.filter(tenant=acme, name="Plant").count() == 1


def test_same_name_in_another_tenant_is_fine(client, acme, globex):
    make_group(globex, "Plant")
    assert client.post(admin_url(DeviceGroup, "add"), {"name": "Plant", "description": ""}).status_code == 302
    assert DeviceGroup.objects.filter(name="Plant").count() == 2


def test_rights_page_sets_and_lists_rights(client, acme, acme_admin):
    group = make_group(acme, "Plant")
    member = make_user(acme, Role.Kind.STANDARD, email="member@acme.test")
    business = builtin_role(acme, Role.Kind.BUSINESS)
    url = object_url(group, "rights")
    assert client.post(url, {"user": member.pk, "rights": ["view", "change"]}).status_code == 302
    assert client.post(url, {"role": business.pk, "rights": ["view"]}).status_code == 302
    assert rights_on(group) == [
        {"user": member.pk, "role": None, "rights": ["change", "view"]},
        {"user": None, "role": business.pk, "rights": ["view"]},
    ]
    holders = client.get(url).context["holders"]
    assert holders == [
        {"kind": "role", "name": "Business user", "rights": ["view"]},
        {"kind": "user", "name": "member@acme.test", "rights": ["change", "view"]},
    ]
    entries = AuditEntry.objects.filter(event="rights.set", object_pk=str(group.pk))
    assert entries.count() == 2 and {e.actor for e in entries} == {acme_admin}
    assert object_url(group, "rights") in client.get(object_url(group)).content.decode()


def test_rights_page_needs_exactly_one_holder(client, acme):
    group = make_group(acme)
    member = make_user(acme, Role.Kind.STANDARD)
    url = object_url(group, "rights")
    assert client.post(url, {"rights": ["view"]}).context["form"].non_field_errors()
    both = {"user": member.pk, "role": builtin_role(acme, "standard").pk, "rights": ["view"]}
    assert client.post(url, both).context["form"].non_field_errors()
    assert rights_on(group) == []


def test_constrained_standard_user_reaches_only_granted_group(acme):
    granted, other = make_group(acme, "Granted"), make_group(acme, "Other")
    user = make_user(acme, Role.Kind.STANDARD)
    grant(granted, ["view", "change"], user=user)
    client = cockpit_client(user)
    assert client.get(object_url(granted)).status_code == 200
    assert client.get(object_url(granted, "history")).status_code == 200
    for view in ("change", "history", "delete"):
        assert client.get(object_url(other, view)).status_code == 404
    before = row_state(other)
    assert client.post(object_url(other), {"name": "hijacked", "description": ""}).status_code == 404
    assert row_state(other) == before
    response = client.post(object_url(granted), {"name": "Granted 2", "description": ""})
    assert response.status_code == 302
    granted.refresh_from_db()
    assert granted.name == "Granted 2"
    assert AuditEntry.objects.get(event="model.update", object_pk=str(granted.pk)).actor == user
    # Visible but without the delete right: refused outright, not hidden.
    assert client.post(object_url(granted, "delete"), {"post": "yes"}).status_code == 403
    assert client.get(object_url(granted, "rights")).status_code == 403
    assert client.get(admin_url(DeviceGroup, "add")).status_code == 403
