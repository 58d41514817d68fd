"""Cockpit: device groups and the rights page, through devices.services."""

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEntry
from devices.models import DeviceGroup
from devices.services import do_create_device_group, do_update_device_group, rights_on
from devices.services.groups import ancestor_ids
from tenants.models import Role
from tenants.services import builtin_role
from tests.factories import grant, make_device, make_group, make_user
from tests.support.admin_isolation import AdminIsolationChecks, Scene
from tests.support.cockpit import admin_url, cockpit_client, object_url, row_state
from tests.support.device_rows import messages_of
from tests.support.group_scope import AdminGroupScopeChecks

pytestmark = pytest.mark.django_db


class TestDeviceGroupAdminIsolation(AdminIsolationChecks, AdminGroupScopeChecks):
    model = DeviceGroup
    autocomplete_through = "devices.devicegroupuserpermission.content_object"

    def make_object(self, tenant: Any) -> Any:
        return make_group(tenant)

    def make_in_group(self, group: DeviceGroup) -> DeviceGroup:
        return group

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "Munich plant", "description": "line 3"}

    def test_foreign_parent_is_rejected(self, scene: Scene) -> None:
        # The generic FK check counts rows of the model, which a foreign parent itself adds to.
        foreign_parent = make_group(scene.other)
        before = row_state(scene.own)
        data = {"name": scene.own.name, "description": "", "parent": foreign_parent.pk}
        response = scene.client.post(object_url(scene.own), data)
        assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
        assert row_state(scene.own) == before
        response = scene.client.post(admin_url(DeviceGroup, "add"), {**data, "name": "New"})
        assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
        assert not DeviceGroup.objects.filter(name="New").exists()

    def test_foreign_groups_are_absent_from_the_tree(self, scene: Scene) -> None:
        response = scene.client.get(admin_url(DeviceGroup, "tree"))
        ids = {node.group_id for node in response.context["nodes"]}
        assert scene.own.pk in ids and scene.foreign.pk not in ids
        assert scene.foreign.name not in response.content.decode()

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


# --- the group tree ------------------------------------------------------------------------


def test_parent_is_set_and_cycles_are_refused(client, acme, acme_admin):
    root = make_group(acme, "Root")
    assert client.post(admin_url(DeviceGroup, "add"), {"name": "Child", "parent": root.pk}).status_code == 302
    child = DeviceGroup.objects.get(tenant=acme, name="Child")
    assert child.parent == root
    grandchild = make_group(acme, "Grandchild")
    assert client.post(object_url(grandchild), {"name": "Grandchild", "parent": child.pk}).status_code == 302
    grandchild.refresh_from_db()
    assert grandchild.parent == child
    move = AuditEntry.objects.get(event="group.move", object_pk=str(grandchild.pk))
    assert move.actor == acme_admin and move.changes == {"parent": [None, child.pk]}
    before = {g.pk: row_state(g) for g in (root, child, grandchild)}
    for target in (grandchild, child, root):
        response = client.post(object_url(root), {"name": "Root", "parent": target.pk})
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors["parent"]
        assert "cannot be placed under it" in " ".join(errors)
    assert {g.pk: row_state(g) for g in (root, child, grandchild)} == before
    assert client.post(object_url(grandchild), {"name": "Grandchild", "parent": ""}).status_code == 302
    grandchild.refresh_from_db()
    assert grandchild.parent is None


def test_services_refuse_cycles_and_other_tenants(acme, globex):
    a, b, c = make_group(acme), make_group(acme), make_group(acme)
    do_update_device_group(b, {"parent": a}, actor=None)
    do_update_device_group(c, {"parent": b}, actor=None)
    assert ancestor_ids(c) == [c.pk, b.pk, a.pk]
    with pytest.raises(ValidationError) as refused:
        do_update_device_group(a, {"parent": c}, actor=None)
    assert "parent" in refused.value.error_dict
    with pytest.raises(ValidationError):
        do_update_device_group(a, {"parent": a}, actor=None)
    with pytest.raises(ValidationError):
        do_update_device_group(a, {"parent": make_group(globex)}, actor=None)
    with pytest.raises(ValidationError):
        do_create_device_group(name="x", parent=make_group(globex), actor=None, tenant=acme)
    with pytest.raises(ValidationError):
        do_update_device_group(a, {"tenant": globex}, actor=None)
    a.refresh_from_db()
    assert (a.parent_id, a.tenant_id) == (None, acme.pk)


def test_standard_user_places_groups_only_under_groups_they_change(acme):
    mine, seen, target = make_group(acme, "Mine"), make_group(acme, "Seen"), make_group(acme, "Target")
    user = make_user(acme, Role.Kind.STANDARD)
    grant(mine, ["view", "change"], user=user)
    grant(seen, ["view"], user=user)
    grant(target, ["view", "change"], user=user)
    client = cockpit_client(user)
    response = client.post(object_url(mine), {"name": "Mine", "parent": seen.pk})
    assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
    hidden = make_group(acme, "Hidden")
    response = client.post(object_url(mine), {"name": "Mine", "parent": hidden.pk})
    assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
    assert client.post(object_url(mine), {"name": "Mine", "parent": target.pk}).status_code == 302
    mine.refresh_from_db()
    assert mine.parent == target


def test_group_tree_shows_visible_groups_with_device_counts(client, acme):
    plant = make_group(acme, "Plant")
    hall = make_group(acme, "Hall")
    line = make_group(acme, "Line")
    do_update_device_group(hall, {"parent": plant}, actor=None)
    do_update_device_group(line, {"parent": hall}, actor=None)
    other = make_group(acme, "Another site")
    for group, count in ((plant, 1), (hall, 2), (line, 3)):
        for _ in range(count):
            make_device(acme, group)
    response = client.get(admin_url(DeviceGroup, "tree"))
    assert response.status_code == 200
    rows = [(n.name, n.depth, n.devices, n.subtree_devices) for n in response.context["nodes"]]
    assert rows == [("Another site", 0, 0, 0), ("Plant", 0, 1, 6), ("Hall", 1, 2, 5), ("Line", 2, 3, 3)]
    content = response.content.decode()
    for group in (plant, hall, line, other):
        assert f"?group__id__exact={group.pk}" in content
    assert admin_url(DeviceGroup, "tree") in client.get(admin_url(DeviceGroup, "changelist")).content.decode()


def test_group_tree_of_a_constrained_user_names_no_hidden_group(acme):
    plant, hall = make_group(acme, "Secret plant"), make_group(acme, "Hall")
    do_update_device_group(hall, {"parent": plant}, actor=None)
    make_device(acme, hall)
    make_device(acme, plant)
    user = make_user(acme, Role.Kind.STANDARD)
    grant(hall, ["view"], user=user)
    response = cockpit_client(user).get(admin_url(DeviceGroup, "tree"))
    assert [(n.name, n.depth, n.devices) for n in response.context["nodes"]] == [("Hall", 0, 1)]
    assert "Secret plant" not in response.content.decode()
    # Rights are not inherited down the tree: granting the parent shows the child to nobody new.
    other = make_user(acme, Role.Kind.STANDARD)
    grant(plant, ["view"], user=other)
    nodes = cockpit_client(other).get(admin_url(DeviceGroup, "tree")).context["nodes"]
    assert [n.name for n in nodes] == ["Secret plant"]


def test_deleting_a_group_in_use_says_what_is_in_the_way_without_naming_it(client, acme):
    parent, child = make_group(acme, "Parent"), make_group(acme, "Hidden child")
    do_update_device_group(child, {"parent": parent}, actor=None)
    make_device(acme, parent, "SECRET-DEVICE")
    for response in (
        client.get(object_url(parent, "delete")),
        client.post(object_url(parent, "delete"), {"post": "yes"}),
    ):
        assert response.status_code == 302  # back to the group's page, as the API's 409 says
        shown = " ".join(messages_of(response))
        assert "still holds 1 subgroup(s), 1 device(s)" in shown
        assert "Hidden child" not in shown and "SECRET-DEVICE" not in shown
    assert DeviceGroup.objects.filter(pk=parent.pk).exists()
