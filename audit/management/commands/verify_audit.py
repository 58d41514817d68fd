"""``manage.py verify_audit [--tenant SLUG]``: exit 0 when the chain is intact, 1 otherwise."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import verify_chain
from audit.models import AuditEntry
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains (one per tenant, plus the platform's)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="only this tenant's chain")

    def handle(self, *args: Any, tenant: str | None = None, **options: Any) -> None:
        if tenant:
            selected = Tenant.objects.filter(slug=tenant).first()
            if selected is None:
                raise CommandError(f"No tenant with slug '{tenant}'.")
            chains: list[tuple[str, int | None]] = [(selected.slug, selected.pk)]
        else:
            chains = [("platform", None), *Tenant.objects.order_by("pk").values_list("slug", "pk")]
        checked = 0
        for label, tenant_id in chains:
            entries = AuditEntry.objects.filter(tenant=tenant_id).order_by("seq").iterator(chunk_size=5000)
            broken = verify_chain(entries)
            if broken is not None:
                entry, reason = broken
                self.stderr.write(
                    f"BROKEN: audit entry {entry.pk} ({label}, position {entry.seq}, {entry.event}): {reason}."
                )
                raise SystemExit(1)
            checked += AuditEntry.objects.filter(tenant=tenant_id).count()
        self.stdout.write(f"Audit trail intact: {checked} entries in {len(chains)} chain(s).")
