"""``manage.py verify_audit [--tenant SLUG] [--require-checkpoint]``: exit 0 when the trail is intact, 1 otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.chain import verify_chain
from audit.checkpoints import Checkpoint, checkpoint_dir, newest_checkpoint, tip_problem
from audit.models import AuditEntry
from tenants.models import Tenant

# A checkpoint older than this many scheduled intervals means the beat job stopped.
STALE_INTERVALS = 3


class _Walk:
    """Hands a chain's entries on to ``verify_chain`` while noting what the checkpoint check needs.

    The chain is read once, streamed: its length, its last position and the hash of the
    entry at the checkpointed position are collected on the way through.
    """

    def __init__(self, entries: Iterable[Any], watch_seq: int | None) -> None:
        self._entries = entries
        self._watch_seq = watch_seq
        self.count = 0
        self.last_seq = 0
        self.hash_at_watch: str | None = None

    def __iter__(self) -> Iterator[Any]:
        for entry in self._entries:
            self.count += 1
            self.last_seq = entry.seq
            if entry.seq == self._watch_seq:
                self.hash_at_watch = entry.entry_hash
            yield entry


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chains (one per tenant, plus the platform's) and check that no chain "
        "ends before the tip recorded in the newest signed checkpoint."
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
        # Read the checkpoint before the database: tenants are never deleted and chains only
        # grow, so every tenant and tip it records is visible to the reads below.
        checkpoint = self._newest_checkpoint(require_checkpoint)
        if tenant:
            selected = Tenant.objects.filter(slug=tenant).first()
            if selected is None:
                raise CommandError(f"No tenant with slug '{tenant}'.")
            chains: list[tuple[str, int | None]] = [(selected.slug, selected.pk)]
        else:
            chains = [("platform", None), *Tenant.objects.order_by("pk").values_list("slug", "pk")]
        checked = 0
        for label, tenant_id in chains:
            checked += self._verify_chain(label, tenant_id, checkpoint)
        if checkpoint is not None and not tenant:
            present = {tenant_id for _, tenant_id in chains}
            for tip in checkpoint.tips.values():
                if tip.tenant_id not in present:
                    self._fail(
                        f"{tip.label} (id {tip.tenant_id}) is in checkpoint {checkpoint.name} but no longer exists: "
                        "its chain was removed"
                    )
        if self.failures:
            self.stderr.write(f"Audit trail verification failed: {self.failures} problem(s).")
            raise SystemExit(1)
        against = f"checkpoint {checkpoint.name}" if checkpoint is not None else "no checkpoint"
        self.stdout.write(
            f"Audit trail intact: {checked} entries in {len(chains)} chain(s), checked against {against}."
        )

    def _verify_chain(self, label: str, tenant_id: int | None, checkpoint: Checkpoint | None) -> int:
        """Verify one chain; report what is wrong with it and return how many entries it has."""
        tip = checkpoint.tips.get(tenant_id) if checkpoint is not None else None
        entries = AuditEntry.objects.filter(tenant=tenant_id).order_by("seq").iterator(chunk_size=5000)
        walk = _Walk(entries, tip.seq if tip is not None else None)
        broken = verify_chain(walk)
        if broken is not None:
            entry, reason = broken
            self._fail(f"audit entry {entry.pk} ({label}, position {entry.seq}, {entry.event}): {reason}")
            return walk.count
        if tenant_id is not None and walk.count == 0:
            # Every tenant's chain starts with the tenant.create entry written with the tenant.
            self._fail(f"tenant '{label}' has no audit entries: its chain was emptied")
        if tip is not None and checkpoint is not None:
            problem = tip_problem(
                tip, last_seq=walk.last_seq, hash_at_tip_seq=walk.hash_at_watch, checkpoint=checkpoint
            )
            if problem is not None:
                self._fail(f"{tip.label}: {problem}")
        return walk.count

    def _newest_checkpoint(self, required: bool) -> Checkpoint | None:
        try:
            checkpoint, altered = newest_checkpoint()
        except OSError as exc:
            raise CommandError(f"Cannot read the audit checkpoints: {exc}") from exc
        for path in altered:
            self._fail(f"checkpoint {path} was altered or damaged (its signature does not verify)")
        report = self._fail_unchecked if required else self._warn
        if checkpoint is None:
            report(
                f"no audit checkpoint in {checkpoint_dir()}: removal of the newest entries cannot be detected "
                "(is the beat job audit.tasks.write_audit_checkpoint running?)"
            )
            return None
        interval = timedelta(seconds=settings.AUDIT_CHECKPOINT_SECONDS)
        if timezone.now() - checkpoint.written_at > STALE_INTERVALS * interval:
            report(
                f"the newest audit checkpoint {checkpoint.name} was written at "
                f"{checkpoint.written_at:%Y-%m-%d %H:%M:%S} UTC, more than {STALE_INTERVALS} checkpoint intervals "
                "ago: removal of entries written since then cannot be detected "
                "(is the beat job audit.tasks.write_audit_checkpoint running?)"
            )
        return checkpoint

    def _fail(self, message: str) -> None:
        self.failures += 1
        self.stderr.write(f"BROKEN: {message}.")

    def _fail_unchecked(self, message: str) -> None:
        self.failures += 1
        self.stderr.write(f"FAILED: {message}.")

    def _warn(self, message: str) -> None:
        self.stderr.write(f"WARNING: {message}.")
