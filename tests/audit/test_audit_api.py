"""The audit trail over the API: tenant-scoped, administrators only, filterable, exportable."""

import csv
import io
import json

import pytest

import audit
from tenants.models import Role
from tests.factories import api_client, make_user

pytestmark = pytest.mark.django_db


def test_administrator_sees_only_own_tenants_entries(acme, globex, acme_admin):
    mine = audit.record("test.mine", tenant=acme)
    theirs = audit.record("test.theirs", tenant=globex)
    platform = audit.record("test.platform", tenant=None)
    client = api_client(acme_admin)
    rows = client.get("/api/v1/audit/?page_size=500").json()["results"]
    seen = {row["id"] for row in rows}
    assert mine.pk in seen
    assert theirs.pk not in seen
    assert platform.pk not in seen
    assert client.get(f"/api/v1/audit/{theirs.pk}/").status_code == 404


def test_non_administrators_see_no_audit(acme):
    audit.record("test.event", tenant=acme)
    for kind in (Role.Kind.STANDARD, Role.Kind.BUSINESS):
        response = api_client(make_user(acme, kind), scope="read").get("/api/v1/audit/")
        assert response.status_code == 200
        assert response.json()["results"] == []


def test_audit_is_read_only(acme, acme_admin):
    entry = audit.record("test.event", tenant=acme)
    client = api_client(acme_admin)
    assert client.delete(f"/api/v1/audit/{entry.pk}/").status_code == 405
    assert client.patch(f"/api/v1/audit/{entry.pk}/", {"event": "x"}, format="json").status_code == 405
    assert client.post("/api/v1/audit/", {"event": "x"}, format="json").status_code in (403, 405)


def test_filters_by_event_and_actor(acme, acme_admin):
    audit.record("login.demo", tenant=acme, actor=acme_admin)
    audit.record("other.demo", tenant=acme)
    rows = api_client(acme_admin).get("/api/v1/audit/?event=login.&actor=admin@acme").json()["results"]
    assert [row["event"] for row in rows] == ["login.demo"]


def test_export_csv_and_json_contain_only_own_tenant(acme, globex, acme_admin):
    audit.record("test.mine", tenant=acme, data={"k": 1})
    audit.record("test.theirs", tenant=globex)
    client = api_client(acme_admin)
    response = client.get("/api/v1/audit/export/?file_format=csv&event=test.")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.getvalue().decode())))
    assert [row["event"] for row in rows] == ["test.mine"]
    assert json.loads(rows[0]["additional_data"]) == {"k": 1}
    response = client.get("/api/v1/audit/export/?file_format=json")
    events = {row["event"] for row in json.loads(response.getvalue())}
    assert "test.mine" in events
    assert "test.theirs" not in events
    assert client.get("/api/v1/audit/export/?file_format=xml").status_code == 400


def test_login_failure_for_a_known_account_lands_in_its_tenant(acme, acme_admin, rf):
    from django.contrib.auth import authenticate

    from audit.models import AuditEntry

    request = rf.post("/cockpit/login/")
    assert authenticate(request=request, username="admin@acme.test", password="wrong-password-123") is None
    assert authenticate(request=request, username="nobody@acme.test", password="wrong-password-123") is None

    assert AuditEntry.objects.filter(event="auth.login_failed", tenant=acme).count() == 1
    assert AuditEntry.objects.filter(event="auth.login_failed", tenant=None).count() == 1
