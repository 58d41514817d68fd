"""Session policy: suspension and idle timeout end sessions; source addresses honour trusted proxies."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client, RequestFactory
from django.utils import timezone

from audit.models import AuditEntry
from audit.request_meta import client_ip
from tenants.models import Role, Tenant
from tenants.services import do_set_tenant_status, do_update_tenant_policy
from tests.factories import make_user, verified_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def relaxed_user(acme):
    """A Standard user of a tenant that does not require 2FA: a plain session suffices."""
    do_update_tenant_policy(acme, {"require_2fa": False})
    user = make_user(acme, Role.Kind.STANDARD)
    client = Client()
    client.force_login(user)
    return user, client


def test_session_works_for_a_user_without_2fa_requirement(relaxed_user):
    _, client = relaxed_user
    assert client.get("/api/v1/me/").status_code == 200


def test_administrator_session_without_second_factor_is_not_authenticated(acme, acme_admin):
    client = Client()
    client.force_login(acme_admin)
    assert client.get("/api/v1/me/").status_code in (401, 403)


def test_suspension_ends_sessions_on_next_request(acme, relaxed_user):
    user, client = relaxed_user
    do_set_tenant_status(acme, Tenant.Status.SUSPENDED)
    assert client.get("/api/v1/me/").status_code in (401, 403)
    assert AuditEntry.objects.filter(event="auth.session_end", object_pk=str(user.pk)).exists()
    do_set_tenant_status(acme, Tenant.Status.ACTIVE)
    assert client.get("/api/v1/me/").status_code in (401, 403), "the session stays ended"


def test_idle_timeout_ends_the_session(acme, relaxed_user):
    _, client = relaxed_user
    assert client.get("/api/v1/me/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=acme.session_idle_minutes - 1)):
        assert client.get("/api/v1/me/").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=2 * acme.session_idle_minutes + 1)):
        assert client.get("/api/v1/me/").status_code in (401, 403)


def test_forwarded_for_is_ignored_without_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert client_ip(request) == "10.0.0.5"


def test_forwarded_for_is_used_behind_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 1.2.3.4, 10.0.0.7")
    # The client wrote 6.6.6.6 itself; 1.2.3.4 is the last hop our proxies did not add.
    assert client_ip(request) == "1.2.3.4"


def test_audit_entries_carry_the_source_address(acme, acme_admin, settings):
    from tests.factories import api_client

    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    client = api_client(acme_admin)
    client.post(
        "/api/v1/device-groups/",
        {"name": "g"},
        format="json",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )
    entry = AuditEntry.objects.filter(event="model.create", tenant=acme).latest("pk")
    assert entry.remote_addr == "203.0.113.9"


def test_reactivating_a_user_does_not_revive_their_old_session(acme, acme_admin):
    from tenants.services import do_update_user

    user = make_user(acme, Role.Kind.STANDARD)
    client = verified_client(user)
    assert client.get("/api/v1/me/").status_code == 200
    do_update_user(user, {"is_active": False}, actor=acme_admin)
    do_update_user(user, {"is_active": True}, actor=acme_admin)
    assert client.get("/api/v1/me/").status_code in (401, 403)
    response = client.get("/cockpit/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    # A fresh login works as usual.
    user.refresh_from_db()
    assert verified_client(user).get("/api/v1/me/").status_code == 200
