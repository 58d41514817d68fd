"""API: users, roles, tokens and /me, with their isolation and role checks."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from tenants.models import ApiToken, Role, Tenant, User
from tenants.services import do_set_tenant_status
from tests.factories import PASSWORD, api_client, ids, make_token, make_user, verified_client
from tests.support.api_isolation import TenantIsolationChecks

pytestmark = pytest.mark.django_db


def _role(tenant: Any, kind: str) -> Role:
    return Role.objects.get(tenant=tenant, kind=kind)


class TestUserIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/users/"
    foreign_keys = {"role": lambda tenant: _role(tenant, Role.Kind.STANDARD)}

    def make_object(self, tenant: Any) -> Any:
        return make_user(tenant, Role.Kind.STANDARD)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"email": "new@example.test", "role": _role(tenant, Role.Kind.STANDARD).pk, "password": PASSWORD}

    def update_payload(self) -> dict[str, Any]:
        return {"full_name": "Renamed"}


class TestRoleIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/roles/"

    def make_object(self, tenant: Any) -> Any:
        from tenants.services import do_create_role

        return do_create_role(name="Auditors", rights=["view"], actor=None, tenant=tenant)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "Operators", "rights": ["view"]}

    def update_payload(self) -> dict[str, Any]:
        return {"name": "Renamed"}


class TestApiTokenIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/tokens/"

    def make_object(self, tenant: Any) -> Any:
        make_token(make_user(tenant, Role.Kind.STANDARD))
        return ApiToken.objects.filter(user__tenant=tenant).latest("pk")

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "ci", "scope": "read"}

    def test_foreign_token_cannot_be_revoked(self, two_tenants: dict[str, Any]) -> None:
        foreign = two_tenants["foreign"]
        response = two_tenants["client"].post(f"{self.endpoint}{foreign.pk}/revoke/")
        assert response.status_code == 404
        foreign.refresh_from_db()
        assert foreign.revoked_at is None


def test_me_describes_caller_and_token(acme_admin):
    response = api_client(acme_admin, scope="read").get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "admin@acme.test"
    assert body["tenant"]["slug"] == "acme"
    assert body["role"]["kind"] == "administrator"
    assert body["token"]["scope"] == "read"


def _session(user: Any) -> APIClient:
    """An API client on a verified cockpit session: where tokens are created."""
    client = APIClient()
    client.cookies = verified_client(user).cookies
    return client


def test_token_is_shown_once_and_stored_hashed(acme_admin):
    client = _session(acme_admin)
    response = client.post("/api/v1/tokens/", {"name": "deploy", "scope": "read", "days": 7}, format="json")
    assert response.status_code == 201, response.content
    secret = response.json()["token"]
    assert secret.startswith("cot_pat_")
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert secret not in (token.digest, token.prefix)
    assert "token" not in client.get(f"/api/v1/tokens/{token.pk}/").json()
    assert api_client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    assert AuditEntry.objects.filter(event="token.create", object_pk=str(token.pk)).exists()


def test_revoked_expired_and_malformed_tokens_get_401(acme_admin):
    secret = make_token(acme_admin)
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/me/").status_code == 200
    token = ApiToken.objects.get(user=acme_admin)
    with time_machine.travel(token.expires_at + timedelta(seconds=1)):
        assert client.get("/api/v1/me/").status_code == 401
    api_client(acme_admin).post(f"/api/v1/tokens/{token.pk}/revoke/")
    assert client.get("/api/v1/me/").status_code == 401
    for bad in ("cot_pat_nope", "garbage", secret[:-1]):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {bad}")
        assert client.get("/api/v1/me/").status_code == 401


def test_token_lifetime_is_capped_by_tenant_policy(acme, acme_admin):
    Tenant.objects.filter(pk=acme.pk).update(api_token_max_days=30)
    client = _session(acme_admin)
    response = client.post("/api/v1/tokens/", {"name": "long", "scope": "read", "days": 31}, format="json")
    assert response.status_code == 400
    assert "30 days" in str(response.json()["days"])
    response = client.post("/api/v1/tokens/", {"name": "default", "scope": "read"}, format="json")
    expires = ApiToken.objects.get(pk=response.json()["id"]).expires_at
    assert expires <= timezone.now() + timedelta(days=30)


def test_business_user_token_gets_403_on_writes(acme):
    business = make_user(acme, Role.Kind.BUSINESS)
    client = api_client(business, scope="read")
    assert client.post("/api/v1/device-groups/", {"name": "x"}, format="json").status_code == 403
    assert client.post("/api/v1/tokens/", {"name": "x", "scope": "read"}, format="json").status_code == 403
    # Even a session-equivalent write attempt from a business user is refused:
    response = api_client(business, scope="read").post("/api/v1/users/", {"email": "a@b.test"}, format="json")
    assert response.status_code == 403


def test_business_user_cannot_hold_a_write_token(acme):
    business = make_user(acme, Role.Kind.BUSINESS)
    with pytest.raises(Exception, match="read-only"):
        make_token(business, scope="write")


def test_read_token_of_an_administrator_cannot_write(acme_admin):
    client = api_client(acme_admin, scope="read")
    response = client.post("/api/v1/device-groups/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]


def test_standard_user_sees_only_themselves_and_cannot_manage_users(acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    client = api_client(user)
    assert ids(client.get("/api/v1/users/")) == {user.pk}
    assert client.get(f"/api/v1/users/{acme_admin.pk}/").status_code == 404
    assert client.post("/api/v1/users/", {"email": "x@acme.test"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/users/{user.pk}/", {"full_name": "Me"}, format="json").status_code == 404


def test_admin_creates_user_with_validated_password(acme, acme_admin):
    client = api_client(acme_admin)
    role = _role(acme, Role.Kind.STANDARD).pk
    weak = client.post(
        "/api/v1/users/", {"email": "weak@acme.test", "role": role, "password": "password"}, format="json"
    )
    assert weak.status_code == 400
    assert "password" in weak.json()
    assert not User.objects.filter(email="weak@acme.test").exists()
    ok = client.post("/api/v1/users/", {"email": "ok@acme.test", "role": role, "password": PASSWORD}, format="json")
    assert ok.status_code == 201, ok.content
    assert "password" not in ok.json()
    assert User.objects.get(email="ok@acme.test").tenant == acme


def test_role_change_is_audited_and_own_role_is_fixed(acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    client = api_client(acme_admin)
    business = _role(acme, Role.Kind.BUSINESS).pk
    assert client.patch(f"/api/v1/users/{user.pk}/", {"role": business}, format="json").status_code == 200
    assert AuditEntry.objects.filter(event="user.role", object_pk=str(user.pk), tenant=acme).exists()
    response = client.patch(f"/api/v1/users/{acme_admin.pk}/", {"role": business}, format="json")
    assert response.status_code == 400


def test_delete_deactivates_and_revokes_tokens(acme, acme_admin):
    user = make_user(acme, Role.Kind.STANDARD)
    secret = make_token(user)
    assert api_client(acme_admin).delete(f"/api/v1/users/{user.pk}/").status_code == 204
    user.refresh_from_db()
    assert not user.is_active
    assert api_client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401


def test_unknown_and_read_only_fields_are_rejected(acme_admin):
    client = api_client(acme_admin)
    response = client.post("/api/v1/device-groups/", {"name": "g", "tenant": 999, "colour": "red"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"tenant", "colour"}
    response = client.post("/api/v1/roles/", {"name": "r", "kind": "administrator"}, format="json")
    assert response.status_code == 400
    assert "kind" in response.json()


def test_builtin_roles_cannot_be_changed(acme, acme_admin):
    admin_role = _role(acme, Role.Kind.ADMINISTRATOR)
    response = api_client(acme_admin).patch(f"/api/v1/roles/{admin_role.pk}/", {"name": "Boss"}, format="json")
    assert response.status_code == 400
    admin_role.refresh_from_db()
    assert admin_role.name == "Administrator"


def test_suspended_tenant_tokens_get_401_with_clear_message(acme, acme_admin):
    client = api_client(acme_admin)
    do_set_tenant_status(acme, Tenant.Status.SUSPENDED)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert "suspended" in response.json()["detail"]


def test_provider_superuser_sees_no_customer_rows_in_api(acme, acme_admin, provider):
    from tests.factories import make_group

    make_group(acme)
    operator = make_user(provider, Role.Kind.OPERATOR)
    User.objects.filter(pk=operator.pk).update(is_superuser=True)
    operator.refresh_from_db()
    client = api_client(operator)
    for endpoint in ("/api/v1/users/", "/api/v1/device-groups/", "/api/v1/audit/", "/api/v1/roles/"):
        response = client.get(endpoint)
        assert response.status_code == 200
        tenants = {row.get("tenant") for row in response.json()["results"]}
        assert acme.pk not in tenants
    assert client.get("/api/v1/device-groups/").json()["results"] == []
    assert client.get(f"/api/v1/users/{acme_admin.pk}/").status_code == 404


def test_malformed_json_is_a_clear_400(acme_admin):
    response = api_client(acme_admin).post("/api/v1/device-groups/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_page_size_is_bounded(acme, acme_admin, monkeypatch):
    from cot.api.pagination import IdCursorPagination
    from tests.factories import make_group

    monkeypatch.setattr(IdCursorPagination, "max_page_size", 2)
    for _ in range(3):
        make_group(acme)
    client = api_client(acme_admin)
    body = client.get("/api/v1/device-groups/?page_size=2").json()
    assert len(body["results"]) == 2
    assert body["next"]
    # Beyond the bound, or not a whole number: a 400 that says what is allowed, never silently ignored.
    for bad in ("100000", "0", "-1", "ten", "", "1.5", "²", "١٢"):  # not ASCII digits either
        response = client.get("/api/v1/device-groups/", {"page_size": bad})
        assert response.status_code == 400, bad
        assert "from 1 to 2" in response.json()["page_size"][0]


def test_a_cursor_the_api_did_not_hand_out_is_a_400(acme, acme_admin):
    import base64

    client = api_client(acme_admin)
    for cursor in (
        "garbage",
        "%%%",
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode(b"p=99999999999999999999999").decode(),
    ):
        for url in ("/api/v1/device-groups/", "/api/v1/measurements/"):
            response = client.get(url, {"cursor": cursor})
            assert response.status_code == 400, (url, cursor, response.status_code)
            assert "cursor" in response.json()


def test_token_rate_limit_names_the_limit_and_sets_retry_after(acme, acme_admin):
    Tenant.objects.filter(pk=acme.pk).update(rate_limits={"token": {"minute": "3/min"}})
    client = api_client(acme_admin)
    codes = [client.get("/api/v1/me/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get("/api/v1/me/")
    assert "'token per minute'" in response.json()["detail"]
    assert int(response["Retry-After"]) >= 1
    # Another token of the same tenant has its own bucket.
    assert api_client(acme_admin).get("/api/v1/me/").status_code == 200


def test_tenant_rate_limit_is_shared_by_all_tokens_of_a_tenant(acme, acme_admin, globex_admin):
    Tenant.objects.filter(pk=acme.pk).update(rate_limits={"tenant_api": {"minute": "2/min"}})
    assert api_client(acme_admin).get("/api/v1/me/").status_code == 200
    assert api_client(make_user(acme, Role.Kind.STANDARD)).get("/api/v1/me/").status_code == 200
    response = api_client(acme_admin).get("/api/v1/me/")
    assert response.status_code == 429
    assert "'tenant_api per minute'" in response.json()["detail"]
    assert api_client(globex_admin).get("/api/v1/me/").status_code == 200


def test_rate_limit_overrides_are_validated(acme):
    from django.core.exceptions import ValidationError

    from tenants.services import do_update_tenant_policy

    for bad in ({"nope": {"second": "1/s"}}, {"token": {"second": "ten/s"}}, {"token": {"fortnight": "1/s"}}):
        acme.refresh_from_db()
        with pytest.raises(ValidationError):
            do_update_tenant_policy(acme, {"rate_limits": bad})


def test_schema_and_docs_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/device-groups/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()


def test_a_taken_email_gets_one_answer_whichever_tenant_holds_it(acme, acme_admin, globex):
    make_user(globex, Role.Kind.STANDARD, email="taken@globex.test")
    make_user(acme, Role.Kind.STANDARD, email="colleague@acme.test")
    client = _session(acme_admin)
    role = Role.objects.get(tenant=acme, kind=Role.Kind.STANDARD).pk
    foreign = client.post("/api/v1/users/", {"email": "taken@globex.test", "role": role}, format="json")
    own = client.post("/api/v1/users/", {"email": "colleague@acme.test", "role": role}, format="json")
    assert foreign.status_code == own.status_code == 400
    assert foreign.json() == own.json()
    assert "globex" not in foreign.content.decode()
    # The attempts are recorded in the caller's trail, although the creation rolled back.
    refused = AuditEntry.objects.filter(event="user.create_refused", tenant=acme).order_by("seq")
    assert [entry.additional_data["email"] for entry in refused] == ["taken@globex.test", "colleague@acme.test"]
    assert not AuditEntry.objects.filter(event="user.create_refused", tenant=globex).exists()


def test_the_schema_is_generated_once_per_process(monkeypatch, db):
    from drf_spectacular.generators import SchemaGenerator

    from cot.api.schema import CachedSchemaView

    monkeypatch.setattr(CachedSchemaView, "_schema", None)
    generated = []
    original = SchemaGenerator.get_schema

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        generated.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counting)
    first = api_client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    second = api_client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    yaml = api_client().get("/api/schema/")
    # What the caller sends selects nothing that would be generated (and kept) anew.
    odd = [api_client().get("/api/schema/", {"lang": lang, "version": "v\n9"}) for lang in ("de", "xx", "fr")]
    assert first.status_code == second.status_code == yaml.status_code == 200
    assert {response.status_code for response in odd} == {200}
    assert first.content == second.content and b"openapi:" in yaml.content
    assert len(generated) == 1


def test_a_request_that_is_wrong_anyway_never_learns_whether_an_email_is_taken(acme, acme_admin, globex):
    make_user(globex, Role.Kind.STANDARD, email="taken@globex.test")
    client = _session(acme_admin)
    role = Role.objects.get(tenant=acme, kind=Role.Kind.STANDARD).pk
    weak = {"role": role, "password": "short"}
    taken = client.post("/api/v1/users/", {**weak, "email": "taken@globex.test"}, format="json")
    free = client.post("/api/v1/users/", {**weak, "email": "free@acme.test"}, format="json")
    assert taken.status_code == free.status_code == 400
    assert set(taken.json()) == set(free.json()) == {"password"}
