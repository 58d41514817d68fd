"""Cockpit: tenants. Operators manage all tenants; administrators edit only their own policy."""

from typing import Any

import pytest
from django.forms.models import model_to_dict

from audit.models import AuditEntry
from tenants.models import Role, Tenant
from tenants.services import POLICY_FIELDS
from tests.factories import make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url

pytestmark = pytest.mark.django_db


class TestTenantAdminIsolation(AdminIsolationChecks):
    model = Tenant
    autocomplete_through = "tenants.user.tenant"
    actions = ("suspend", "reactivate")

    def make_object(self, tenant: Any) -> Any:
        return tenant


def _policy(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    """The tenant's policy form as stored, with ``changes`` (a false checkbox is left out)."""
    data = {**model_to_dict(tenant, fields=POLICY_FIELDS), **changes}
    return {key: value for key, value in data.items() if value is not False}


@pytest.fixture
def operator(provider: Any) -> Any:
    return make_user(provider, Role.Kind.OPERATOR, email="ops@platform.test")


def test_operator_lists_every_tenant(operator, acme, globex):
    response = cockpit_client(operator).get(admin_url(Tenant, "changelist"))
    assert response.status_code == 200
    assert changelist_pks(response) >= {acme.pk, globex.pk, operator.tenant_id}
    for column in ("slug", "name", "kind", "status"):
        assert f"column-{column}" in response.content.decode()


def test_operator_creates_tenant_through_service(operator):
    response = cockpit_client(operator).post(admin_url(Tenant, "add"), {"slug": "initech", "name": "Initech"})
    assert response.status_code == 302, response.content
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.kind == Tenant.Kind.CUSTOMER
    assert set(tenant.roles.values_list("kind", flat=True)) == {"administrator", "standard", "business"}
    entry = AuditEntry.objects.get(tenant=tenant, event="tenant.create")
    assert entry.actor == operator


def test_duplicate_slug_is_a_form_error(operator, acme):
    response = cockpit_client(operator).post(admin_url(Tenant, "add"), {"slug": "acme", "name": "Acme again"})
    assert response.status_code == 200
    assert "slug" in response.context["adminform"].form.errors
    assert Tenant.objects.filter(slug="acme").count() == 1


def test_operator_suspends_and_reactivates(operator, acme, globex):
    client = cockpit_client(operator)
    changelist = admin_url(Tenant, "changelist")
    response = client.post(changelist, {"action": "suspend", "_selected_action": [acme.pk], "index": 0})
    assert response.status_code == 302
    acme.refresh_from_db()
    globex.refresh_from_db()
    assert acme.status == Tenant.Status.SUSPENDED
    assert globex.status == Tenant.Status.ACTIVE
    assert AuditEntry.objects.get(tenant=acme, event="tenant.status").actor == operator
    client.post(changelist, {"action": "reactivate", "_selected_action": [acme.pk], "index": 0})
    acme.refresh_from_db()
    assert acme.status == Tenant.Status.ACTIVE


def test_provider_tenant_cannot_be_suspended(operator):
    client = cockpit_client(operator)
    data = {"action": "suspend", "_selected_action": [operator.tenant_id], "index": 0}
    response = client.post(admin_url(Tenant, "changelist"), data, follow=True)
    assert "cannot be suspended" in response.content.decode()
    operator.tenant.refresh_from_db()
    assert operator.tenant.is_active


def test_administrator_sees_only_own_tenant_and_edits_policy(acme_admin, globex):
    client = cockpit_client(acme_admin)
    assert changelist_pks(client.get(admin_url(Tenant, "changelist"))) == {acme_admin.tenant_id}
    policy = _policy(acme_admin.tenant, name="Acme Ltd", session_idle_minutes=15, api_token_max_days=30)
    response = client.post(object_url(acme_admin.tenant), policy)
    assert response.status_code == 302, response.content
    tenant = Tenant.objects.get(pk=acme_admin.tenant_id)
    assert (tenant.name, tenant.session_idle_minutes, tenant.api_token_max_days) == ("Acme Ltd", 15, 30)
    entry = AuditEntry.objects.get(tenant=tenant, event="tenant.policy")
    assert entry.actor == acme_admin
    assert entry.changes["session_idle_minutes"] == [30, 15]


def test_policy_out_of_range_is_a_form_error(acme_admin):
    policy = _policy(acme_admin.tenant, session_idle_minutes=1)
    response = cockpit_client(acme_admin).post(object_url(acme_admin.tenant), policy)
    assert response.status_code == 200
    assert "session_idle_minutes" in response.context["adminform"].form.errors


def test_administrator_cannot_create_suspend_or_delete_tenants(acme_admin):
    client = cockpit_client(acme_admin)
    assert client.get(admin_url(Tenant, "add")).status_code == 403
    assert client.post(admin_url(Tenant, "add"), {"slug": "evil", "name": "Evil"}).status_code == 403
    assert client.get(object_url(acme_admin.tenant, "delete")).status_code == 403
    data = {"action": "suspend", "_selected_action": [acme_admin.tenant_id], "index": 0}
    client.post(admin_url(Tenant, "changelist"), data)
    assert Tenant.objects.get(pk=acme_admin.tenant_id).is_active
    assert not Tenant.objects.filter(slug="evil").exists()


def test_nobody_deletes_tenants(operator, acme):
    client = cockpit_client(operator)
    assert client.get(object_url(acme, "delete")).status_code == 403
    assert client.post(object_url(acme, "delete"), {"post": "yes"}).status_code == 403
    assert Tenant.objects.filter(pk=acme.pk).exists()


def test_slug_kind_and_status_are_not_editable(acme_admin):
    policy = _policy(acme_admin.tenant, slug="hijack", kind="provider", status="suspended")
    cockpit_client(acme_admin).post(object_url(acme_admin.tenant), policy)
    tenant = Tenant.objects.get(pk=acme_admin.tenant_id)
    assert (tenant.slug, tenant.kind, tenant.status) == ("acme", "customer", "active")
