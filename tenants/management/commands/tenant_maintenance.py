"""``manage.py tenant_maintenance <slug> read_only|closed|off [--reason …]``: as the platform, audited."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from cot.database.commands import CrossTenantCommand
from tenants.models import Tenant
from tenants.services import do_set_tenant_maintenance

MODES = {"read_only": Tenant.Maintenance.READ_ONLY, "closed": Tenant.Maintenance.CLOSED, "off": Tenant.Maintenance.OFF}


class Command(CrossTenantCommand):
    help = (
        "Put a tenant into maintenance (read_only: its people may read, not change; closed: they and its "
        "devices get a 503 notice) or end it (off). Audited in the tenant's trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant", help="the tenant's slug")
        parser.add_argument("mode", choices=sorted(MODES))
        parser.add_argument("--reason", default="", help="shown to the tenant's people (200 characters at most)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant '{options['tenant']}'.")
        try:
            do_set_tenant_maintenance(tenant, MODES[options["mode"]], reason=options["reason"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(f"{tenant.slug}: maintenance {options['mode']}")
