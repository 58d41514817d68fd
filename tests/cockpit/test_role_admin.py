"""Cockpit: roles. Built-in roles are read-only; custom roles go through tenants.services."""

from typing import Any

import pytest

from audit.models import AuditEntry
from tenants.models import Role
from tenants.services import builtin_role, do_create_role
from tests.factories import make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, cockpit_client, object_url

pytestmark = pytest.mark.django_db


class TestRoleAdminIsolation(AdminIsolationChecks):
    model = Role
    autocomplete_through = "tenants.user.role"

    def make_object(self, tenant: Any) -> Any:
        return do_create_role(name="Auditors", rights=["view"], actor=None, tenant=tenant)

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "Field crew", "rights": ["view", "change"], "description": "on site"}


@pytest.fixture
def client(acme_admin: Any) -> Any:
    return cockpit_client(acme_admin)


def test_create_custom_role(client, acme, acme_admin):
    payload = {"name": "Field crew", "rights": ["view", "change"], "description": ""}
    assert client.post(admin_url(Role, "add"), payload).status_code == 302
    role = Role.objects.get(tenant=acme, name="Field crew")
    assert (role.kind, role.rights) == (Role.Kind.CUSTOM, ["change", "view"])
    assert AuditEntry.objects.get(event="role.create", object_pk=str(role.pk)).actor == acme_admin


def test_duplicate_name_is_a_form_error(client, acme):
    response = client.post(admin_url(Role, "add"), {"name": "Administrator", "rights": [], "description": ""})
    assert response.status_code == 200
    assert "name" in response.context["adminform"].form.errors
    assert Role.objects.filter(tenant=acme, name="Administrator").count() == 1


def test_update_custom_role(client, acme, acme_admin):
    role = do_create_role(name="Auditors", rights=["view"], actor=None, tenant=acme)
    payload = {"name": "Auditors", "rights": ["view", "delete"], "description": ""}
    assert client.post(object_url(role), payload).status_code == 302
    role.refresh_from_db()
    assert role.rights == ["delete", "view"]
    entry = AuditEntry.objects.get(event="role.update", object_pk=str(role.pk))
    assert entry.actor == acme_admin and entry.changes == {"rights": [["view"], ["delete", "view"]]}


def test_builtin_roles_are_read_only(client, acme):
    role = builtin_role(acme, Role.Kind.STANDARD)
    response = client.get(object_url(role))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="rights"' not in content and 'name="_save"' not in content
    assert client.post(object_url(role), {"name": "Renamed", "rights": ["view"]}).status_code == 403
    assert client.post(object_url(role, "delete"), {"post": "yes"}).status_code == 403
    role.refresh_from_db()
    assert role.name == "Standard user"


def test_delete_custom_role(client, acme, acme_admin):
    role = do_create_role(name="Auditors", rights=["view"], actor=None, tenant=acme)
    assert client.post(object_url(role, "delete"), {"post": "yes"}).status_code == 302
    assert not Role.objects.filter(pk=role.pk).exists()
    assert AuditEntry.objects.get(event="role.delete", object_pk=str(role.pk)).actor == acme_admin


def test_role_with_members_is_not_deleted(client, acme):
    role = do_create_role(name="Auditors", rights=["view"], actor=None, tenant=acme)
    make_user(acme, role)
    response = client.post(object_url(role, "delete"), {"post": "yes"}, follow=True)
    assert Role.objects.filter(pk=role.pk).exists()
    assert response.status_code == 200
