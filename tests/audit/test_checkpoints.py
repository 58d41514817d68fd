"""Signed checkpoints of each chain's tip make removal of the newest entries detectable."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

import audit
from audit import checkpoints
from audit.checkpoints import chain_tips, write_checkpoint
from audit.models import AuditEntry
from audit.tasks import write_audit_checkpoint
from cot.celery import app
from tests.support.owner import tamper_with_audit

pytestmark = pytest.mark.django_db


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        call_command("verify_audit", *args)
    except SystemExit as exc:
        captured = capsys.readouterr()
        return int(exc.code or 0), captured.out, captured.err
    captured = capsys.readouterr()
    return 0, captured.out, captured.err


def _remove_entries(tenant_id: int, from_seq: int) -> None:
    tamper_with_audit(("DELETE FROM audit_auditentry WHERE tenant_id = %s AND seq >= %s", [tenant_id, from_seq]))


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-checkpoint-*.json"))


@pytest.mark.django_db(transaction=True)
def test_verify_audit_fails_when_a_tenants_chain_is_empty(acme, globex, capsys):
    _remove_entries(acme.pk, from_seq=1)
    code, _, err = _verify(capsys)
    assert code == 1
    assert "tenant 'acme' has no audit entries" in err
    assert "globex" not in err


def test_an_empty_platform_chain_is_fine(acme, capsys):
    assert not AuditEntry.objects.filter(tenant=None).exists()
    code, out, _ = _verify(capsys)
    assert code == 0
    assert "intact" in out


def test_chain_tips_are_read_in_one_query(acme, globex, django_assert_num_queries):
    audit.record("test.platform", tenant=None)
    newest = audit.record("test.two", tenant=acme)
    with django_assert_num_queries(1):
        tips = chain_tips()
    by_tenant = {tip.tenant_id: tip for tip in tips}
    assert set(by_tenant) == {None, acme.pk, globex.pk}
    assert (by_tenant[acme.pk].seq, by_tenant[acme.pk].entry_hash) == (newest.seq, newest.entry_hash)
    assert by_tenant[globex.pk].seq == AuditEntry.objects.filter(tenant=globex).count()


def test_the_task_writes_a_signed_checkpoint_of_every_tip(acme, globex, checkpoint_dir, capsys):
    tip = audit.record("test.event", tenant=acme)
    path = Path(write_audit_checkpoint.apply().get())
    assert path.parent == checkpoint_dir
    assert _files(checkpoint_dir) == [path]
    document = json.loads(path.read_text())
    chains = {chain["slug"]: chain for chain in document["checkpoint"]["chains"]}
    assert chains["acme"] == {"tenant_id": acme.pk, "slug": "acme", "seq": tip.seq, "entry_hash": tip.entry_hash}
    assert "globex" in chains
    assert len(document["signature"]) == 64

    audit.record("test.after_the_checkpoint", tenant=acme)
    code, out, err = _verify(capsys, "--require-checkpoint")
    assert code == 0, err
    assert f"the newest {path.name}" in out


def test_beat_runs_the_registered_checkpoint_task():
    entry = settings.CELERY_BEAT_SCHEDULE["write-audit-checkpoint"]
    assert entry["task"] == write_audit_checkpoint.name
    assert entry["task"] in app.tasks
    assert entry["schedule"] == settings.AUDIT_CHECKPOINT_SECONDS


def test_the_command_writes_a_checkpoint(acme, checkpoint_dir, capsys):
    call_command("audit_checkpoint")
    assert len(_files(checkpoint_dir)) == 1
    assert "Wrote audit checkpoint" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_removing_the_newest_entries_after_a_checkpoint_is_detected(acme, globex, capsys):
    kept = audit.record("test.one", tenant=acme)
    audit.record("test.two", tenant=acme)
    audit.record("test.three", tenant=acme)
    write_checkpoint()
    # The shortened chain is still a valid chain: only the checkpoint shows what is gone.
    _remove_entries(acme.pk, from_seq=kept.seq + 1)
    code, _, err = _verify(capsys)
    assert code == 1
    assert "tenant 'acme': the newest entries were removed" in err
    assert f"ends at position {kept.seq}" in err
    assert "globex" not in err


@pytest.mark.django_db(transaction=True)
def test_removing_the_newest_entries_and_carrying_on_is_detected(acme, capsys):
    audit.record("test.one", tenant=acme)
    removed = audit.record("test.two", tenant=acme)
    write_checkpoint()
    _remove_entries(acme.pk, from_seq=removed.seq)
    # New entries fill the removed positions, so the chain is as long as the checkpoint's.
    audit.record("test.two.replaced", tenant=acme)
    audit.record("test.three", tenant=acme)
    code, _, err = _verify(capsys, "--tenant", "acme")
    assert code == 1
    assert "tenant 'acme': the chain was rewritten" in err
    assert f"position {removed.seq}" in err


@pytest.mark.django_db(transaction=True)
def test_the_next_checkpoint_cannot_launder_a_removal(acme, globex, capsys, monkeypatch):
    kept = audit.record("test.one", tenant=acme)
    audit.record("test.two", tenant=acme)
    write_checkpoint()
    _remove_entries(acme.pk, from_seq=kept.seq + 1)
    audit.record("test.globex.goes.on", tenant=globex)
    # The beat job's next run refuses to write a checkpoint on top of the removal ...
    with pytest.raises(checkpoints.CheckpointRefused, match="tenant 'acme': the newest entries were removed"):
        write_checkpoint()
    with pytest.raises(CommandError, match="No checkpoint was written"):
        call_command("audit_checkpoint")
    # ... and had one been written anyway, the older checkpoints still show it.
    monkeypatch.setattr(checkpoints, "regressions", lambda previous, tips: [])
    write_checkpoint()
    code, _, err = _verify(capsys)
    assert code == 1
    assert "tenant 'acme': the newest entries were removed" in err


@pytest.mark.django_db(transaction=True)
def test_removing_a_whole_tenant_after_a_checkpoint_is_detected(acme, globex, capsys):
    write_checkpoint()
    tamper_with_audit(
        ("DELETE FROM audit_auditentry WHERE tenant_id = %s", [globex.pk]),
        ("DELETE FROM firmware_firmwarepolicy WHERE tenant_id = %s", [globex.pk]),
        ("DELETE FROM tenants_role WHERE tenant_id = %s", [globex.pk]),
        ("DELETE FROM tenants_tenant WHERE id = %s", [globex.pk]),
    )
    code, _, err = _verify(capsys)
    assert code == 1
    assert f"tenant 'globex' (id {globex.pk}) is in checkpoint" in err


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_altered_to_hide_a_removal_fails(acme, capsys):
    kept = audit.record("test.one", tenant=acme)
    audit.record("test.two", tenant=acme)
    path = write_checkpoint().path
    _remove_entries(acme.pk, from_seq=kept.seq + 1)
    # Point the checkpoint at the shortened chain's tip, as someone covering the removal would.
    document = json.loads(path.read_text())
    for chain in document["checkpoint"]["chains"]:
        if chain["tenant_id"] == acme.pk:
            chain["seq"], chain["entry_hash"] = kept.seq, kept.entry_hash
    path.write_text(json.dumps(document))
    code, _, err = _verify(capsys)
    assert code == 1
    assert f"checkpoint {path} was altered" in err


@pytest.mark.django_db(transaction=True)
def test_a_damaged_newest_checkpoint_fails_and_the_one_before_is_still_checked(acme, checkpoint_dir, capsys):
    kept = audit.record("test.one", tenant=acme)
    audit.record("test.two", tenant=acme)
    older = write_checkpoint().path
    newest = write_checkpoint().path
    newest.write_text(newest.read_text()[:-10])
    _remove_entries(acme.pk, from_seq=kept.seq + 1)
    code, _, err = _verify(capsys)
    assert code == 1
    assert f"checkpoint {newest} was altered" in err
    assert f"checkpoint {older.name} recorded position {kept.seq + 1}" in err


def test_without_a_checkpoint_verify_warns_or_with_require_checkpoint_fails(acme, capsys):
    code, _, err = _verify(capsys)
    assert code == 0
    assert "WARNING: no audit checkpoint" in err
    assert "removal of the newest entries cannot be detected" in err
    code, _, err = _verify(capsys, "--require-checkpoint")
    assert code == 1
    assert "FAILED: no audit checkpoint" in err


def test_a_stale_checkpoint_warns_or_with_require_checkpoint_fails(acme, capsys, monkeypatch):
    long_ago = timezone.now() - timedelta(seconds=10 * settings.AUDIT_CHECKPOINT_SECONDS)
    with monkeypatch.context() as patch:
        patch.setattr(checkpoints.timezone, "now", lambda: long_ago)
        write_checkpoint()
    code, _, err = _verify(capsys)
    assert code == 0
    assert "checkpoint intervals ago" in err
    code, _, err = _verify(capsys, "--require-checkpoint")
    assert code == 1
    assert "FAILED: the newest audit checkpoint" in err


def test_only_the_newest_checkpoints_are_kept(acme, checkpoint_dir, monkeypatch):
    monkeypatch.setattr(checkpoints, "KEEP", 3)
    written = [write_checkpoint().path for _ in range(5)]
    assert _files(checkpoint_dir) == written[-3:]
    assert not list(checkpoint_dir.glob(".tmp-*"))
