"""Support access: customer-granted, at most 24 hours, through an expiring link, checked every request."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from audit.models import AuditEntry
from tenants.models import Role, SupportGrant
from tenants.policy import PASSKEY_REQUIRED_FOR_SUPPORT
from tenants.services import (
    do_create_support_grant,
    do_expire_support_grants,
    do_revoke_support_grant,
    do_update_tenant_policy,
)
from tenants.support_middleware import SUPPORT_GRANT_SESSION_KEY
from tests.factories import api_client, ids, make_group, make_user, passkey_client, verified_client
from tests.support.api_isolation import TenantIsolationChecks

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(provider: Any) -> Any:
    # A long idle timeout, so moving the clock across a grant's lifetime tests the grant,
    # not the session policy.
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    return make_user(provider, Role.Kind.SUPPORT, email="engineer@platform.test")


@pytest.fixture
def grant_link(acme_admin: Any) -> tuple[SupportGrant, str]:
    return do_create_support_grant(actor=acme_admin, reason="TICKET-1", duration_hours=2, scope="read")


def open_link(client: Any, link: str, **kwargs: Any) -> Any:
    """What the link's page does: POST the secret from the link's fragment."""
    return client.post("/support/enter/", {"secret": link.partition("#")[2]}, **kwargs)


def groups_seen(client: Any) -> Any:
    return client.get("/api/v1/device-groups/")


class TestSupportGrantIsolation(TenantIsolationChecks):
    endpoint = "/api/v1/support-grants/"

    def make_object(self, tenant: Any) -> Any:
        admin = make_user(tenant, Role.Kind.ADMINISTRATOR)
        return do_create_support_grant(duration_hours=24, actor=admin, reason="other tenant")[0]

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"reason": "TICKET-9", "duration_hours": 4}

    def test_foreign_grant_cannot_be_revoked_or_inspected(self, two_tenants: dict[str, Any]) -> None:
        url = f"{self.detail(two_tenants['foreign'])}"
        assert two_tenants["client"].post(f"{url}revoke/").status_code == 404
        assert two_tenants["client"].get(f"{url}activity/").status_code == 404
        two_tenants["foreign"].refresh_from_db()
        assert two_tenants["foreign"].revoked_at is None


def test_admin_creates_grant_with_link_shown_once(acme_admin):
    client = api_client(acme_admin)
    payload = {"reason": "TICKET-7", "scope": "write", "duration_hours": 24}
    response = client.post("/api/v1/support-grants/", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert "/support/enter/#cot_sgl_" in body["link"]
    assert body["status"] == "pending"
    assert body["duration_hours"] == 24
    grant = SupportGrant.objects.get(pk=body["id"])
    assert grant.expires_at - grant.created_at == timedelta(hours=24)
    assert "link" not in client.get(f"/api/v1/support-grants/{grant.pk}/").json()
    assert body["link"].partition("#")[2] not in grant.link_digest


@pytest.mark.parametrize("hours", [0, 25, 48])
def test_grant_over_24_hours_or_under_one_is_refused(acme_admin, hours):
    response = api_client(acme_admin).post(
        "/api/v1/support-grants/", {"reason": "x", "duration_hours": hours}, format="json"
    )
    assert response.status_code == 400
    assert "duration_hours" in response.json()
    assert not SupportGrant.objects.exists()


def test_grant_without_a_duration_is_refused(acme_admin):
    # Nothing is preselected, least of all the longest: the administrator says how long.
    response = api_client(acme_admin).post("/api/v1/support-grants/", {"reason": "x"}, format="json")
    assert response.status_code == 400
    assert "duration_hours" in response.json()
    assert not SupportGrant.objects.exists()


def test_database_refuses_a_grant_longer_than_24_hours(acme_admin, grant_link):
    from django.db import IntegrityError, transaction

    grant, _ = grant_link
    with pytest.raises(IntegrityError), transaction.atomic():
        SupportGrant.objects.filter(pk=grant.pk).update(expires_at=grant.created_at + timedelta(hours=25))


def test_only_administrators_grant(acme):
    user = make_user(acme, Role.Kind.STANDARD)
    response = api_client(user).post("/api/v1/support-grants/", {"reason": "x", "duration_hours": 1}, format="json")
    assert response.status_code == 403


def test_engineer_is_denied_before_opening_allowed_during_and_denied_one_second_after_expiry(
    acme, engineer, grant_link
):
    grant, link = grant_link
    group = make_group(acme)
    client = verified_client(engineer)
    assert groups_seen(client).json()["results"] == []  # before the link is used
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        assert open_link(client, link).status_code == 302
        assert [g["id"] for g in groups_seen(client).json()["results"]] == [group.pk]
        assert client.get(f"/api/v1/device-groups/{group.pk}/").status_code == 200
        traveller.move_to(grant.expires_at - timedelta(seconds=1))
        assert client.get(f"/api/v1/device-groups/{group.pk}/").status_code == 200
        traveller.move_to(grant.expires_at + timedelta(seconds=1))
        assert client.get(f"/api/v1/device-groups/{group.pk}/").status_code == 404
        assert groups_seen(client).json()["results"] == []


def test_revocation_ends_access_on_the_next_request(acme, acme_admin, engineer, grant_link):
    grant, link = grant_link
    group = make_group(acme)
    client = verified_client(engineer)
    open_link(client, link)
    assert client.get(f"/api/v1/device-groups/{group.pk}/").status_code == 200
    do_revoke_support_grant(grant, actor=acme_admin)
    response = client.get(f"/api/v1/device-groups/{group.pk}/")
    assert response.status_code in (401, 403, 404)
    assert AuditEntry.objects.filter(event="support_grant.revoke", tenant=acme).exists()


def test_read_grant_blocks_writes_and_write_grant_allows_them(acme, acme_admin, engineer, grant_link):
    _, link = grant_link
    group = make_group(acme)
    client = verified_client(engineer)
    open_link(client, link)
    response = client.patch(f"/api/v1/device-groups/{group.pk}/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    _, write_link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T-2", scope="write")
    writer = verified_client(make_user(engineer.tenant, Role.Kind.SUPPORT))
    open_link(writer, write_link)
    response = writer.patch(f"/api/v1/device-groups/{group.pk}/", {"name": "fixed"}, content_type="application/json")
    assert response.status_code == 200


def test_write_grant_never_manages_users_roles_tokens_or_grants(acme, acme_admin, engineer):
    _, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T-3", scope="write")
    client = verified_client(engineer)
    open_link(client, link)
    assert client.get("/api/v1/users/").status_code == 200  # seeing is allowed
    for url, payload in (
        ("/api/v1/users/", {"email": "x@acme.test"}),
        ("/api/v1/roles/", {"name": "x", "rights": ["view"]}),
        ("/api/v1/support-grants/", {"reason": "more time", "duration_hours": 1}),
        ("/api/v1/tokens/", {"name": "x", "scope": "read"}),
    ):
        assert client.post(url, payload, content_type="application/json").status_code == 403, url
    assert (
        client.patch(f"/api/v1/users/{acme_admin.pk}/", {"full_name": "x"}, content_type="application/json").status_code
        == 403
    )
    assert client.get("/api/v1/tokens/").json()["results"] == []
    assert client.get("/api/v1/support-grants/").json()["results"] == []


def test_link_reuse_by_another_engineer_is_refused(provider, engineer, grant_link):
    _, link = grant_link
    assert open_link(verified_client(engineer), link).status_code == 302
    other = make_user(provider, Role.Kind.SUPPORT)
    other_client = verified_client(other)
    assert open_link(other_client, link).status_code == 404
    assert groups_seen(other_client).json()["results"] == []


def test_link_for_a_named_engineer_refuses_others(acme_admin, provider, engineer):
    _, link = do_create_support_grant(
        duration_hours=24, actor=acme_admin, reason="T", engineer_email="someone.else@platform.test"
    )
    assert open_link(verified_client(engineer), link).status_code == 404


def test_customer_users_and_operators_cannot_use_a_link(acme, provider, grant_link):
    _, link = grant_link
    operator = make_user(provider, Role.Kind.OPERATOR)
    assert open_link(verified_client(operator), link).status_code == 404
    assert open_link(verified_client(make_user(acme, Role.Kind.ADMINISTRATOR)), link).status_code == 404
    assert not SupportGrant.objects.filter(engineer__isnull=False).exists()


def test_link_needs_a_two_factor_login(grant_link, engineer, client):
    _, link = grant_link
    client.force_login(engineer)  # password only
    response = open_link(client, link)
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert not SupportGrant.objects.filter(engineer__isnull=False).exists()


def test_support_and_operator_without_grant_see_no_customer_rows(acme, acme_admin, provider, engineer):
    make_group(acme)
    operator = make_user(provider, Role.Kind.OPERATOR)
    for user in (engineer, operator):
        client = verified_client(user)
        for url in ("/api/v1/device-groups/", "/api/v1/users/", "/api/v1/audit/", "/api/v1/support-grants/"):
            rows = client.get(url).json()["results"]
            assert all(row.get("email", "").endswith("platform.test") for row in rows if "email" in row), url
            assert url == "/api/v1/users/" or rows == [], url
        assert client.get(f"/api/v1/users/{acme_admin.pk}/").status_code == 404


def test_with_two_grants_only_the_current_sessions_tenant_is_reachable(
    acme, globex, globex_admin, acme_admin, engineer
):
    acme_group, globex_group = make_group(acme), make_group(globex)
    _, acme_link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="A")
    _, globex_link = do_create_support_grant(duration_hours=24, actor=globex_admin, reason="G")
    client = verified_client(engineer)
    open_link(client, acme_link)
    assert [g["id"] for g in groups_seen(client).json()["results"]] == [acme_group.pk]
    open_link(client, globex_link)
    assert [g["id"] for g in groups_seen(client).json()["results"]] == [globex_group.pk]
    assert client.get(f"/api/v1/device-groups/{acme_group.pk}/").status_code == 404


def test_activity_lists_exactly_the_engineers_actions(acme, acme_admin, engineer):
    grant, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T", scope="write")
    group = make_group(acme)
    client = verified_client(engineer)
    open_link(client, link)
    client.get(f"/api/v1/device-groups/{group.pk}/")
    client.patch(f"/api/v1/device-groups/{group.pk}/", {"description": "checked"}, content_type="application/json")
    api_client(acme_admin).get("/api/v1/device-groups/")  # the admin's own action: not in the activity
    rows = api_client(acme_admin).get(f"/api/v1/support-grants/{grant.pk}/activity/").json()["results"]
    assert rows, "the engineer's actions are listed"
    assert all(f"{engineer.email} via support grant {grant.pk}" == row["actor_label"] for row in rows)
    events = [row["event"] for row in rows]
    # Newest first, like every list in the API.
    assert events == ["support.request", "model.update", "support.request", "support_grant.open"]
    paths = [row["additional_data"]["path"] for row in rows if row["event"] == "support.request"]
    assert f"/api/v1/device-groups/{group.pk}/" in paths


def test_expiry_job_marks_audits_ends_sessions_and_mails_admins(
    acme, acme_admin, engineer, grant_link, django_capture_on_commit_callbacks
):
    grant, link = grant_link
    client = verified_client(engineer)
    open_link(client, link)
    with time_machine.travel(grant.expires_at + timedelta(minutes=1)), django_capture_on_commit_callbacks(execute=True):
        assert do_expire_support_grants() == 1
        assert do_expire_support_grants() == 0  # idempotent
    grant.refresh_from_db()
    assert grant.expiry_processed_at is not None
    assert not grant.sessions.exists()
    entry = AuditEntry.objects.get(event="support_grant.expire", tenant=acme)
    assert entry.actor_kind == "system"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [acme_admin.email]
    # The engineer's login session itself was ended.
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_grant_lifecycle_status(acme_admin, engineer, grant_link):
    grant, link = grant_link
    assert grant.status == "pending"
    open_link(verified_client(engineer), link)
    grant.refresh_from_db()
    assert grant.status == "active"
    with time_machine.travel(grant.expires_at):
        assert grant.status == "expired"
    do_revoke_support_grant(grant, actor=acme_admin)
    grant.refresh_from_db()
    assert grant.status == "revoked"


def test_read_grant_cannot_bisect_password_hashes_and_its_queries_are_recorded(acme, engineer, grant_link):
    grant, link = grant_link
    client = verified_client(engineer)
    open_link(client, link)
    url = "/cockpit/tenants/user/"
    assert client.get(url, {"password__startswith": "argon2"}).status_code == 400
    assert client.get(url, {"q": "needle"}).status_code == 200
    queries = [
        entry.additional_data["query"]
        for entry in AuditEntry.objects.filter(support_grant_id=grant.pk, event="support.request")
    ]
    assert "q=needle" in queries
    assert "password__startswith=argon2" in queries


def test_link_secret_never_travels_in_a_url(acme_admin, engineer, grant_link):
    grant, link = grant_link
    secret = link.partition("#")[2]
    assert secret.startswith("cot_sgl_") and secret not in link.partition("#")[0]
    client = verified_client(engineer)
    assert client.get(f"/support/enter/{secret}/").status_code == 404  # the old path form is gone
    assert client.get("/support/enter/").status_code == 200
    assert open_link(client, link).status_code == 302
    grant.refresh_from_db()
    assert grant.engineer_id == engineer.pk


def test_refused_link_attempts_stay_in_the_customers_trail(acme, acme_admin, provider, engineer, grant_link):
    grant, link = grant_link
    assert open_link(verified_client(engineer), link).status_code == 302
    stranger = make_user(provider, Role.Kind.SUPPORT, email="stranger@platform.test")
    assert open_link(verified_client(stranger), link).status_code == 404  # bound to another engineer
    do_revoke_support_grant(grant, actor=acme_admin)
    assert open_link(verified_client(engineer), link).status_code == 404  # revoked
    refused = AuditEntry.objects.filter(event="support_grant.refused", tenant=acme).order_by("seq")
    assert [entry.additional_data["engineer"] for entry in refused] == [stranger.email, engineer.email]
    grant.refresh_from_db()
    assert grant.engineer_id == engineer.pk  # the refused attempt changed nothing else


@pytest.mark.django_db(databases=["default", "telemetry"])
def test_an_engineers_own_events_name_no_customer_grant_and_tie_no_tenants(acme, engineer, grant_link):
    """Logging out inside a grant writes to the provider's chain: that entry must not name acme's grant."""
    from tenants.isolation import find_cross_tenant_rows

    client = verified_client(engineer)
    assert open_link(client, grant_link[1]).status_code in (200, 302)
    assert groups_seen(client).status_code == 200
    client.post("/cockpit/logout/")

    logout = AuditEntry.objects.filter(event="auth.logout", actor=engineer).get()
    assert logout.tenant_id == engineer.tenant_id and logout.support_grant_id is None
    in_acme = AuditEntry.objects.filter(tenant=acme, support_grant_id=grant_link[0].pk)
    assert in_acme.exists()  # what the engineer did inside acme still names the grant
    assert find_cross_tenant_rows().clean


def test_a_live_pages_refreshes_are_recorded_once_per_path_and_query(acme, engineer, grant_link):
    grant, link = grant_link
    client = verified_client(engineer)
    open_link(client, link)
    panel, page = "/cockpit/dashboard/panels/fleet/", "/api/v1/device-groups/"

    def recorded(path: str) -> list[str]:
        entries = AuditEntry.objects.filter(support_grant_id=grant.pk, event="support.request")
        return [e.additional_data["query"] for e in entries if e.additional_data["path"] == path]

    for _ in range(3):
        assert client.get(panel, headers={"HX-Request": "true"}).status_code == 200
    assert recorded(panel) == [""]
    # Another query is other data: recorded.
    client.get(panel, {"page": "2"}, headers={"HX-Request": "true"})
    assert sorted(recorded(panel)) == ["", "page=2"]
    # Only the live views' refreshes qualify: the header alone changes nothing elsewhere.
    for _ in range(2):
        client.get(page, headers={"HX-Request": "true"})
    assert len(recorded(page)) == 2


def test_a_tenant_that_requires_passkeys_requires_them_of_engineers(acme, acme_admin, engineer, grant_link):
    grant, link = grant_link
    group = make_group(acme, "north")
    do_update_tenant_policy(acme, {"require_passkeys": True}, actor=None)
    by_code = verified_client(engineer)
    response = open_link(by_code, link, follow=True)
    assert PASSKEY_REQUIRED_FOR_SUPPORT in response.content.decode()
    assert SUPPORT_GRANT_SESSION_KEY not in by_code.session
    assert groups_seen(by_code).json()["results"] == []

    by_passkey = passkey_client(engineer)
    assert open_link(by_passkey, link).status_code == 302
    assert by_passkey.session[SUPPORT_GRANT_SESSION_KEY] == grant.pk
    assert ids(groups_seen(by_passkey)) == {group.pk}


def test_a_grant_in_use_ends_when_the_tenant_starts_requiring_passkeys(acme, acme_admin, engineer, grant_link):
    _, link = grant_link
    client = verified_client(engineer)
    open_link(client, link)
    assert SUPPORT_GRANT_SESSION_KEY in client.session
    do_update_tenant_policy(acme, {"require_passkeys": True}, actor=None)
    page = client.get("/cockpit/passkeys/")
    assert PASSKEY_REQUIRED_FOR_SUPPORT in page.content.decode()
    assert SUPPORT_GRANT_SESSION_KEY not in client.session


def test_an_engineer_manages_their_passkeys_outside_the_customers_tenant(acme, engineer, grant_link):
    _, link = grant_link
    client = verified_client(engineer)
    open_link(client, link)
    assert "Leave the support session" in client.get("/cockpit/passkeys/").content.decode()
    assert client.post("/cockpit/passkeys/ceremony/registration/begin/").status_code == 403
