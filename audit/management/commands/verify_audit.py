"""``manage.py verify_audit [--tenant SLUG] [--require-checkpoint]``: exit 0 when the trail is intact, 1 otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from audit.chain import verify_chain
from audit.checkpoints import Checkpoint, Tip, checkpoint_dir, tip_problem, valid_checkpoints
from audit.models import AuditEntry
from cot.database.commands import CrossTenantCommand
from tenants.models import Tenant

# A checkpoint older than this many scheduled intervals means the beat job stopped.
STALE_INTERVALS = 3


class _Walk:
    """Hands a chain's entries on to ``verify_chain`` while noting what the checkpoint check needs.

    The chain is read once, streamed: its length, its last position and the hashes of the
    entries at the checkpointed positions are collected on the way through.
    """

    def __init__(self, entries: Iterable[Any], watch: set[int]) -> None:
        self._entries = entries
        self._watch = watch
        self.count = 0
        self.last_seq = 0
        self.hashes: dict[int, str] = {}

    def __iter__(self) -> Iterator[Any]:
        for entry in self._entries:
            self.count += 1
            self.last_seq = entry.seq
            if entry.seq in self._watch:
                self.hashes[entry.seq] = entry.entry_hash
            yield entry


class Command(CrossTenantCommand):
    cross_tenant_path = "audit.verify"

    help = (
        "Verify the audit trail's hash chains (one per tenant, plus the platform's) and check that no chain "
        "ends before, or differs at, a tip recorded in a signed checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="only this tenant's chain")
        parser.add_argument(
            "--require-checkpoint",
            action="store_true",
            help="fail (instead of warning) when there is no checkpoint or the newest one is stale",
        )

    def handle(self, *args: Any, tenant: str | None = None, require_checkpoint: bool = False, **options: Any) -> None:
        self.failures = 0
        # Read the checkpoints before the database: tenants are never deleted and chains only
        # grow, so every tenant and tip they record is visible to the reads below.
        checkpoints = self._checkpoints(require_checkpoint)
        if tenant:
            selected = Tenant.objects.filter(slug=tenant).first()
            if selected is None:
                raise CommandError(f"No tenant with slug '{tenant}'.")
            chains: list[tuple[str, int | None]] = [(selected.slug, selected.pk)]
        else:
            chains = [("platform", None), *Tenant.objects.order_by("pk").values_list("slug", "pk")]
        checked = 0
        for label, tenant_id in chains:
            checked += self._verify_chain(label, tenant_id, checkpoints)
        if not tenant:
            present = {tenant_id for _, tenant_id in chains}
            gone = {
                tip.tenant_id: (tip, checkpoint)
                for checkpoint in reversed(checkpoints)
                for tip in checkpoint.tips.values()
                if tip.tenant_id not in present
            }
            for tip, checkpoint in gone.values():
                self._fail(
                    f"{tip.label} (id {tip.tenant_id}) is in checkpoint {checkpoint.name} but no longer exists: "
                    "its chain was removed"
                )
        if self.failures:
            self.stderr.write(f"Audit trail verification failed: {self.failures} problem(s).")
            raise SystemExit(1)
        against = (
            f"{len(checkpoints)} checkpoint(s), the newest {checkpoints[0].name}" if checkpoints else "no checkpoint"
        )
        self.stdout.write(
            f"Audit trail intact: {checked} entries in {len(chains)} chain(s), checked against {against}."
        )

    def _verify_chain(self, label: str, tenant_id: int | None, checkpoints: list[Checkpoint]) -> int:
        """Verify one chain; report what is wrong with it and return how many entries it has."""
        tips: list[tuple[Tip, Checkpoint]] = [
            (checkpoint.tips[tenant_id], checkpoint) for checkpoint in checkpoints if tenant_id in checkpoint.tips
        ]
        entries = AuditEntry.objects.filter(tenant=tenant_id).order_by("seq").iterator(chunk_size=5000)
        walk = _Walk(entries, {tip.seq for tip, _ in tips})
        broken = verify_chain(walk)
        if broken is not None:
            entry, reason = broken
            self._fail(f"audit entry {entry.pk} ({label}, position {entry.seq}, {entry.event}): {reason}")
            return walk.count
        if tenant_id is not None and walk.count == 0:
            # Every tenant's chain starts with the tenant.create entry written with the tenant.
            self._fail(f"tenant '{label}' has no audit entries: its chain was emptied")
        # Every kept checkpoint, newest first: an older one still shows a removal that a later
        # checkpoint was (somehow) written over. One report per chain is enough.
        for tip, checkpoint in tips:
            problem = tip_problem(
                tip, last_seq=walk.last_seq, hash_at_tip_seq=walk.hashes.get(tip.seq), checkpoint=checkpoint
            )
            if problem is not None:
                self._fail(f"{tip.label}: {problem}")
                break
        return walk.count

    def _checkpoints(self, required: bool) -> list[Checkpoint]:
        try:
            checkpoints, altered = valid_checkpoints()
        except OSError as exc:
            raise CommandError(f"Cannot read the audit checkpoints: {exc}") from exc
        for path in altered:
            self._fail(f"checkpoint {path} was altered or damaged (its signature does not verify)")
        report = self._fail_unchecked if required else self._warn
        if not checkpoints:
            report(
                f"no audit checkpoint in {checkpoint_dir()}: removal of the newest entries cannot be detected "
                "(is the beat job audit.tasks.write_audit_checkpoint running?)"
            )
            return []
        checkpoint = checkpoints[0]
        interval = timedelta(seconds=settings.AUDIT_CHECKPOINT_SECONDS)
        if timezone.now() - checkpoint.written_at > STALE_INTERVALS * interval:
            report(
                f"the newest audit checkpoint {checkpoint.name} was written at "
                f"{checkpoint.written_at:%Y-%m-%d %H:%M:%S} UTC, more than {STALE_INTERVALS} checkpoint intervals "
                "ago: removal of entries written since then cannot be detected "
                "(is the beat job audit.tasks.write_audit_checkpoint running?)"
            )
        return checkpoints

    def _fail(self, message: str) -> None:
        self.failures += 1
        self.stderr.write(f"BROKEN: {message}.")

    def _fail_unchecked(self, message: str) -> None:
        self.failures += 1
        self.stderr.write(f"FAILED: {message}.")

    def _warn(self, message: str) -> None:
        self.stderr.write(f"WARNING: {message}.")
