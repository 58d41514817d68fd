"""Cockpit: API tokens. Created for the requesting user with the secret shown once; revoked, never edited."""

import re
from typing import Any

import pytest
from django.contrib.messages import get_messages

from audit.models import AuditEntry
from tenants.models import ApiToken, Role
from tenants.services import do_create_api_token
from tenants.tokens import secret_digest
from tests.factories import make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, cockpit_client, object_url

pytestmark = pytest.mark.django_db


def _token(owner: Any, name: str = "ci") -> ApiToken:
    token, _secret = do_create_api_token(user=owner, name=name, scope=ApiToken.Scope.READ, actor=None)
    return token


class TestApiTokenAdminIsolation(AdminIsolationChecks):
    model = ApiToken
    filter_relations = {"user": lambda token: token.user}
    actions = ("revoke",)

    def make_object(self, tenant: Any) -> Any:
        return _token(make_user(tenant, Role.Kind.STANDARD))

    def add_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "deploy", "scope": "read", "days": "30"}

    def search_term(self, obj: Any) -> str:
        return obj.prefix


SECRET = re.compile(r"cot_pat_[\w-]{40,}")


def test_add_creates_token_for_requester(acme_admin, acme):
    other = make_user(acme, Role.Kind.STANDARD)
    client = cockpit_client(acme_admin)
    response = client.post(admin_url(ApiToken, "add"), {"name": "deploy", "scope": "write", "user": other.pk})
    assert response.status_code == 302, response.content
    token = ApiToken.objects.get(name="deploy")
    assert token.user == acme_admin
    (secret,) = SECRET.findall(" ".join(str(m) for m in get_messages(response.wsgi_request)))
    assert token.digest == secret_digest(secret)
    assert AuditEntry.objects.get(event="token.create", object_pk=str(token.pk)).actor == acme_admin


def test_secret_is_shown_once(acme_admin):
    client = cockpit_client(acme_admin)
    first = client.post(admin_url(ApiToken, "add"), {"name": "deploy", "scope": "read"}, follow=True)
    (secret,) = set(SECRET.findall(first.content.decode()))
    token = ApiToken.objects.get(name="deploy")
    assert token.digest == secret_digest(secret)
    for url in (admin_url(ApiToken, "changelist"), object_url(token)):
        assert not SECRET.findall(client.get(url).content.decode())


def test_lifetime_above_tenant_cap_is_a_form_error(acme_admin):
    response = cockpit_client(acme_admin).post(admin_url(ApiToken, "add"), {"name": "x", "scope": "read", "days": 999})
    assert response.status_code == 200
    assert "days" in response.context["adminform"].form.errors
    assert not ApiToken.objects.filter(name="x").exists()


def test_business_user_gets_read_tokens_only(acme):
    business = make_user(acme, Role.Kind.BUSINESS)
    client = cockpit_client(business)
    response = client.post(admin_url(ApiToken, "add"), {"name": "w", "scope": "write"})
    assert response.status_code == 200
    assert "scope" in response.context["adminform"].form.errors
    assert client.post(admin_url(ApiToken, "add"), {"name": "r", "scope": "read"}).status_code == 302
    assert ApiToken.objects.get(name="r").user == business


def test_revoke_action(acme_admin, acme):
    token = _token(make_user(acme, Role.Kind.STANDARD))
    client = cockpit_client(acme_admin)
    data = {"action": "revoke", "_selected_action": [token.pk], "index": 0}
    assert client.post(admin_url(ApiToken, "changelist"), data).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEntry.objects.get(event="token.revoke", object_pk=str(token.pk)).actor == acme_admin


def test_owner_sees_and_revokes_only_own_tokens(acme):
    owner, colleague = make_user(acme, Role.Kind.STANDARD), make_user(acme, Role.Kind.STANDARD)
    mine, theirs = _token(owner, "mine"), _token(colleague, "theirs")
    client = cockpit_client(owner)
    assert client.get(object_url(theirs)).status_code == 404
    data = {"action": "revoke", "_selected_action": [mine.pk, theirs.pk], "index": 0}
    client.post(admin_url(ApiToken, "changelist"), data)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.revoked_at is not None and theirs.revoked_at is None


def test_tokens_are_never_edited_or_deleted(acme_admin):
    token = _token(acme_admin)
    client = cockpit_client(acme_admin)
    response = client.get(object_url(token))
    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="name"' not in content and 'name="_save"' not in content
    assert client.post(object_url(token), {"name": "renamed", "scope": "write"}).status_code == 403
    assert client.post(object_url(token, "delete"), {"post": "yes"}).status_code == 403
    token.refresh_from_db()
    assert (token.name, token.scope) == ("ci", "read")
