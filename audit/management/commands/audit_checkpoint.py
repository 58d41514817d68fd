"""``manage.py audit_checkpoint``: write a signed checkpoint of every audit chain's tip now."""

from typing import Any

from django.core.management.base import CommandError

from audit.checkpoints import CheckpointRefused, write_checkpoint
from cot.database.commands import CrossTenantCommand


class Command(CrossTenantCommand):
    cross_tenant_path = "audit.verify"

    help = "Write a signed checkpoint of every audit chain's tip into COT_AUDIT_CHECKPOINT_DIR (the beat job does it)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = write_checkpoint()
        except CheckpointRefused as exc:
            raise CommandError(f"{exc} No checkpoint was written; run verify_audit and investigate.") from exc
        self.stdout.write(f"Wrote audit checkpoint {checkpoint.path} ({len(checkpoint.tips)} chain(s)).")
