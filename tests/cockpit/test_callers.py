"""Cockpit pages as seen by each kind of caller: Business users, operators, superusers, other tenants."""

from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse

from audit.models import AuditEntry, tenant_id_of
from cot.cockpit.mixins import TenantScopedAdminMixin
from cot.cockpit.site import cockpit
from devices.models import Device, DeviceGroup
from tenants.models import ApiToken, Role, SupportGrant, Tenant, User
from tenants.services import builtin_role, do_create_role, do_create_support_grant
from tests.factories import grant, make_group, make_token, make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url, row_state
from tests.support.discovery import classes_built_on
from tests.support.group_scope import AdminGroupScopeChecks, group_scoped

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])  # the home page counts payload


@pytest.fixture
def customer_data(acme: Any, acme_admin: Any) -> dict[str, Any]:
    """One row of every cockpit model in the customer tenant ``acme``."""
    user = make_user(acme, Role.Kind.STANDARD, email="engineer@acme.test")
    make_token(user)
    return {
        "user": user,
        "group": make_group(acme, "Acme secret plant"),
        "role": do_create_role(name="Acme night shift", rights=["view"], actor=None, tenant=acme),
        "token": ApiToken.objects.get(user=user),
        "grant": do_create_support_grant(duration_hours=24, actor=acme_admin, reason="Acme secret ticket")[0],
    }


@pytest.fixture
def operator(provider: Any) -> User:
    return make_user(provider, Role.Kind.OPERATOR, email="ops@platform.test")


@pytest.fixture
def superuser(provider: Any) -> User:
    user = make_user(provider, Role.Kind.OPERATOR, email="root@platform.test")
    User.objects.filter(pk=user.pk).update(is_superuser=True)
    user.refresh_from_db()
    return user


@pytest.fixture
def support(provider: Any) -> User:
    return make_user(provider, Role.Kind.SUPPORT, email="support@platform.test")


@pytest.mark.parametrize("who", ["operator", "superuser", "support"])
def test_provider_staff_see_no_customer_rows(request, who, customer_data, acme):
    staff = request.getfixturevalue(who)
    client = cockpit_client(staff)
    for model in (User, Role, ApiToken, DeviceGroup, AuditEntry, SupportGrant):
        response = client.get(admin_url(model, "changelist"))
        assert response.status_code in (200, 403), model
        if response.status_code == 200:
            foreign = [row for row in response.context["cl"].queryset if tenant_id_of(row) != staff.tenant_id]
            assert not foreign, model
        content = response.content.decode()
        for secret in (
            "engineer@acme.test",
            "Acme secret plant",
            "Acme night shift",
            "admin@acme.test",
            "Acme secret ticket",
        ):
            assert secret not in content
    for obj in customer_data.values():
        assert client.get(object_url(obj)).status_code == 404
    index = client.get(reverse("cockpit:index")).content.decode()
    assert "engineer@acme.test" not in index and "Acme secret plant" not in index


def test_superuser_without_role_is_not_admitted(provider, customer_data):
    root = make_user(provider, Role.Kind.OPERATOR, email="norole@platform.test")
    User.objects.filter(pk=root.pk).update(is_superuser=True, role=None)
    root.refresh_from_db()
    client = cockpit_client(root)
    for model in (Tenant, User, Role, ApiToken, DeviceGroup, AuditEntry):
        assert client.get(admin_url(model, "changelist")).status_code == 302
    assert client.get(object_url(customer_data["group"])).status_code == 302


def test_operator_manages_tenants_not_their_data(operator, customer_data, acme):
    client = cockpit_client(operator)
    assert acme.pk in changelist_pks(client.get(admin_url(Tenant, "changelist")))
    assert client.get(admin_url(DeviceGroup, "add")).status_code == 403
    assert client.get(admin_url(User, "add")).status_code == 403


def test_business_user_changes_nothing(acme, acme_admin):
    group = make_group(acme, "Plant")
    business = make_user(acme, Role.Kind.BUSINESS)
    grant(group, ["view"], user=business)
    client = cockpit_client(business)
    response = client.get(object_url(group))
    assert response.status_code == 200 and 'name="_save"' not in response.content.decode()
    before = {obj: row_state(obj) for obj in (group, business, acme, builtin_role(acme, "standard"))}
    assert client.post(object_url(group), {"name": "x", "description": ""}).status_code == 403
    assert client.post(object_url(group, "delete"), {"post": "yes"}).status_code == 403
    assert client.post(admin_url(DeviceGroup, "add"), {"name": "x"}).status_code == 403
    assert client.post(object_url(group, "rights"), {"user": business.pk, "rights": ["change"]}).status_code == 403
    assert client.post(object_url(business), {"full_name": "x", "role": business.role_id}).status_code == 403
    assert client.post(object_url(acme_admin), {"full_name": "x"}).status_code == 404
    assert client.post(admin_url(User, "add"), {"email": "x@acme.test"}).status_code == 403
    assert client.post(admin_url(Role, "add"), {"name": "x"}).status_code == 403
    assert client.post(object_url(acme), {"name": "x"}).status_code == 403
    data = {"action": "reset_two_factor", "_selected_action": [business.pk], "index": 0}
    client.post(admin_url(User, "changelist"), data)
    assert {obj: row_state(obj) for obj in before} == before
    assert not AuditEntry.objects.filter(actor=business).exclude(event__startswith="auth.").exists()


def test_index_lists_only_reachable_models(acme):
    business = make_user(acme, Role.Kind.BUSINESS)
    models = {m["object_name"] for app in cockpit.get_app_list(_request_for(business)) for m in app["models"]}
    assert not {"AuditEntry", "DeviceRegistration", "SupportGrant", "PayloadPurge"} & models
    # Pages of models the role may see once rights are granted are there before any are.
    assert {"Tenant", "User", "Role", "ApiToken", "Device", "DeviceGroup", "Alarm"} <= models


def _request_for(user: User) -> Any:
    request = RequestFactory().get("/cockpit/")
    request.user = user
    return request


def test_admin_log_stays_empty_and_the_home_page_names_no_other_tenant(acme_admin, globex_admin, globex):
    make_group(globex, "Globex secret plant")
    cockpit_client(globex_admin).post(admin_url(DeviceGroup, "add"), {"name": "Globex plant 2", "description": ""})
    client = cockpit_client(acme_admin)
    client.post(admin_url(DeviceGroup, "add"), {"name": "Plant", "description": ""})
    assert LogEntry.objects.count() == 0
    response = client.get(reverse("cockpit:index"))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Globex" not in content
    # Django's "Recent actions" (from the admin log, across tenants) is replaced by the dashboard.
    assert "Recent actions" not in content and 'id="panel-fleet"' in content


def test_anonymous_and_unverified_sessions_are_sent_to_login(acme_admin):
    anonymous = Client()
    url = admin_url(DeviceGroup, "changelist")
    assert anonymous.get(url).status_code == 302
    unverified = Client()
    unverified.force_login(acme_admin)
    assert unverified.get(url).status_code == 302


def test_every_cockpit_admin_is_tenant_scoped():
    # The admin isolation classes are discovered, so a new admin without one fails here.
    covered = {cls.model for cls in classes_built_on(AdminIsolationChecks) if hasattr(cls, "model")}
    for model, model_admin in cockpit._registry.items():
        assert isinstance(model_admin, TenantScopedAdminMixin), model
        assert model in covered, f"{model.__name__} has no cross-tenant tests in tests/cockpit"


def test_every_group_scoped_cockpit_admin_has_a_within_tenant_test_class():
    """Granted group 200, another group of the same tenant 404 (``tests/support/group_scope.py``)."""
    covered = {cls.model for cls in classes_built_on(AdminGroupScopeChecks) if hasattr(cls, "model")}
    scoped = {model for model in cockpit._registry if group_scoped(model)}
    assert Device in scoped  # the discovery itself works
    missing = sorted(model.__name__ for model in scoped - covered)
    assert missing == [], f"group-scoped admins without an AdminGroupScopeChecks class: {missing}"


def test_view_on_site_shortcut_is_not_served(acme_admin, globex):
    """The admin's shortcut looks objects up outside the access layer, so the cockpit drops it."""
    foreign = make_group(globex, "Globex plant")
    content_type = ContentType.objects.get_for_model(DeviceGroup)
    with pytest.raises(NoReverseMatch):
        reverse("cockpit:view_on_site", args=(content_type.pk, foreign.pk))
    client = cockpit_client(acme_admin)
    responses = [client.get(f"/cockpit/r/{content_type.pk}/{pk}/") for pk in (foreign.pk, 10**9)]
    assert [r.status_code for r in responses] == [404, 404]
    assert responses[0].content == responses[1].content
