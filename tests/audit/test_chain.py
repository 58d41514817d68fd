"""The audit trail is append-only in the database and tamper-evident through its chain."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

import audit
from audit.models import AuditEntry
from tests.support.owner import owner_cursor, tamper_with_audit

pytestmark = pytest.mark.django_db


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        call_command("verify_audit", *args)
    except SystemExit as exc:
        return int(exc.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().out


def test_chain_links_each_tenants_entries_in_order(acme, globex):
    first = audit.record("test.one", tenant=acme)
    second = audit.record("test.two", tenant=acme)
    other = audit.record("test.other", tenant=globex)
    assert second.seq == first.seq + 1
    assert second.prev_hash == first.entry_hash
    assert other.prev_hash != first.entry_hash


@pytest.mark.django_db(transaction=True)
def test_update_and_delete_are_refused_by_the_database_even_for_the_owner(acme):
    entry = audit.record("test.event", tenant=acme)
    for sql in (
        "UPDATE audit_auditentry SET event = 'forged' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), owner_cursor() as cursor:
            cursor.execute(sql, [entry.pk])
    assert AuditEntry.objects.get(pk=entry.pk).event == "test.event"


def test_the_application_role_may_neither_change_nor_empty_the_trail(acme):
    entry = audit.record("test.event", tenant=acme)
    for sql in (
        "UPDATE audit_auditentry SET event = 'forged' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
        "TRUNCATE audit_auditentry",
        "ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_no_update_delete",
    ):
        refused = pytest.raises(DatabaseError, match=r"permission denied|must be owner")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk] if "%s" in sql else None)
    assert AuditEntry.objects.get(pk=entry.pk).event == "test.event"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("old_escape_hatch", [False, True], ids=["plain", "with-old-escape-hatch-setting"])
def test_truncate_is_refused_by_the_database_even_for_the_owner(acme, old_escape_hatch):
    audit.record("test.event", tenant=acme)
    with pytest.raises(DatabaseError, match="append-only"), owner_cursor() as cursor:
        # The test database switches this trigger off so tests can flush tables
        # (tests/conftest.py); the failed transaction rolls this back to that state.
        cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_no_truncate")
        if old_escape_hatch:
            cursor.execute("SET LOCAL cot.audit_allow_truncate = 'on'")
        cursor.execute("TRUNCATE audit_auditentry")
    assert AuditEntry.objects.filter(tenant=acme, event="test.event").exists()


def test_orm_save_of_an_existing_entry_is_refused(acme):
    entry = audit.record("test.event", tenant=acme)
    entry.event = "forged"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


def test_verify_audit_passes_on_an_intact_trail(acme, capsys):
    audit.record("test.event", tenant=acme)
    code, out = _verify(capsys)
    assert code == 0
    assert "intact" in out


@pytest.mark.django_db(transaction=True)
def test_verify_audit_reports_a_row_changed_by_the_owner_with_raw_sql(acme, capsys):
    audit.record("test.one", tenant=acme)
    victim = audit.record("test.two", tenant=acme, data={"amount": 1})
    audit.record("test.three", tenant=acme)
    # The owner (or a superuser) can switch triggers off; the chain still tells.
    tamper_with_audit(("UPDATE audit_auditentry SET additional_data = '{\"amount\": 1000}' WHERE id = %s", [victim.pk]))
    code, err = _verify(capsys, "--tenant", "acme")
    assert code == 1
    assert f"audit entry {victim.pk}" in err
    assert "changed" in err


@pytest.mark.django_db(transaction=True)
def test_verify_audit_reports_a_deleted_row(acme, capsys):
    audit.record("test.one", tenant=acme)
    victim = audit.record("test.two", tenant=acme)
    after = audit.record("test.three", tenant=acme)
    tamper_with_audit(("DELETE FROM audit_auditentry WHERE id = %s", [victim.pk]))
    code, err = _verify(capsys)
    assert code == 1
    assert f"audit entry {after.pk}" in err
    assert "missing" in err


def test_rolled_back_change_leaves_no_entry(acme):
    before = AuditEntry.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("test.event", tenant=acme)
        raise RuntimeError("the change failed")
    assert AuditEntry.objects.count() == before
