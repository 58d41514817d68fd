"""Cockpit: users of the tenant, created and changed only through tenants.services."""

from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEntry
from tenants.models import Role, User
from tenants.services import builtin_role
from tests.factories import PASSWORD, make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, cockpit_client, object_url

pytestmark = pytest.mark.django_db


def _standard(tenant: Any) -> Role:
    return builtin_role(tenant, Role.Kind.STANDARD)


class TestUserAdminIsolation(AdminIsolationChecks):
    model = User
    foreign_keys = {"role": _standard}
    autocomplete_through = "tenants.apitoken.user"
    filter_relations = {"role": lambda user: user.role}
    actions = ("reset_two_factor",)

    def make_object(self, tenant: Any) -> Any:
        user = make_user(tenant, Role.Kind.STANDARD)
        TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        return user

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {
            "email": f"new@{tenant.slug}.test",
            "full_name": "New Person",
            "role": _standard(tenant).pk,
            "password": PASSWORD,
            "password_again": PASSWORD,
        }


def _change_payload(user: User, **changes: Any) -> dict[str, Any]:
    data = {"full_name": user.full_name, "role": user.role_id, "is_active": "on" if user.is_active else ""}
    return {**data, **changes}


@pytest.fixture
def client(acme_admin: User) -> Any:
    return cockpit_client(acme_admin)


def test_password_hashes_cannot_be_bisected_through_the_changelist(client, acme_admin):
    # Each refused lookup would have answered one question about every user's hash.
    url = admin_url(User, "changelist")
    for lookup in ("password__startswith", "password__lt", "password__regex", "password"):
        assert client.get(url, {lookup: "argon2"}).status_code == 400, lookup
    assert client.get(url, {"role__tenant__users__password__startswith": "a"}).status_code == 400
    # What the list filters use still works.
    assert client.get(url, {"is_active__exact": "1", "q": "admin"}).status_code == 200


def test_a_taken_email_is_refused_without_naming_its_tenant(client, acme, globex):
    make_user(globex, Role.Kind.STANDARD, email="taken@globex.test")
    payload = TestUserAdminIsolation().add_payload(acme)
    response = client.post(admin_url(User, "add"), {**payload, "email": "taken@globex.test"})
    assert response.status_code == 200
    from tenants.services import EMAIL_IN_USE

    assert response.context["adminform"].form.errors["email"] == [EMAIL_IN_USE]
    assert AuditEntry.objects.filter(event="user.create_refused", tenant=acme).count() == 1


def test_list_shows_users_with_two_factor_state(client, acme_admin):
    response = client.get(admin_url(User, "changelist"))
    content = response.content.decode()
    for column in ("email", "full_name", "role", "is_active", "two_factor_enabled"):
        assert f"column-{column}" in content
    assert "admin@acme.test" in content


def test_create_user_through_service(client, acme, acme_admin):
    payload = {
        "email": "Engineer@Acme.test",
        "full_name": "Eng",
        "role": _standard(acme).pk,
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    response = client.post(admin_url(User, "add"), payload)
    assert response.status_code == 302, response.content
    user = User.objects.get(email="engineer@acme.test")
    assert user.tenant == acme and user.role == _standard(acme)
    assert user.check_password(PASSWORD)
    assert list(user.groups.all()) == [user.role.group]
    assert AuditEntry.objects.get(event="user.create", object_pk=str(user.pk)).actor == acme_admin


@pytest.mark.parametrize(
    ("password", "again", "error"),
    [("short", "short", "password"), ("123456789012", "123456789012", "password"), (PASSWORD, "x", "password_again")],
)
def test_weak_or_mismatched_password_is_a_form_error(client, acme, password, again, error):
    payload = {"email": "weak@acme.test", "role": _standard(acme).pk, "password": password, "password_again": again}
    response = client.post(admin_url(User, "add"), payload)
    assert response.status_code == 200
    assert error in response.context["adminform"].form.errors
    assert not User.objects.filter(email="weak@acme.test").exists()
    assert not AuditEntry.objects.filter(event="user.create", object_repr="weak@acme.test").exists()


def test_change_role_and_deactivate(client, acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    business = builtin_role(acme, Role.Kind.BUSINESS)
    response = client.post(object_url(user), _change_payload(user, role=business.pk, is_active=""))
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.role == business and not user.is_active
    assert list(user.groups.all()) == [business.group]
    events = set(AuditEntry.objects.filter(object_pk=str(user.pk), actor=acme_admin).values_list("event", flat=True))
    assert {"user.role", "user.update"} <= events


def test_own_role_change_is_a_form_error(client, acme, acme_admin):
    response = client.post(object_url(acme_admin), _change_payload(acme_admin, role=_standard(acme).pk))
    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    acme_admin.refresh_from_db()
    assert acme_admin.role.kind == Role.Kind.ADMINISTRATOR


def test_email_password_and_privileges_are_not_in_the_form(client, acme_admin):
    response = client.get(object_url(acme_admin))
    form = response.context["adminform"].form
    assert set(form.fields) == {"full_name", "role", "is_active"}
    content = response.content.decode()
    assert "argon2" not in content and acme_admin.password not in content
    for hidden in ("is_superuser", "user_permissions", 'name="groups"', 'name="tenant"'):
        assert hidden not in content


def test_posted_privileges_are_ignored(client, acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    payload = _change_payload(user, is_superuser="on", email="x@evil.test", password="x", full_name="Renamed")
    assert client.post(object_url(user), payload).status_code == 302
    email = user.email
    user.refresh_from_db()
    assert (user.full_name, user.is_superuser, user.email) == ("Renamed", False, email)
    assert user.check_password(PASSWORD)


def test_reset_two_factor_action(client, acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    data = {"action": "reset_two_factor", "_selected_action": [user.pk], "index": 0}
    assert client.post(admin_url(User, "changelist"), data).status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert AuditEntry.objects.get(event="2fa.reset", object_pk=str(user.pk)).actor == acme_admin


def test_users_are_never_deleted(client, acme):
    user = make_user(acme, Role.Kind.STANDARD)
    assert client.post(object_url(user, "delete"), {"post": "yes"}).status_code == 403
    assert User.objects.filter(pk=user.pk).exists()
    assert "delete_selected" not in client.get(admin_url(User, "changelist")).content.decode()
