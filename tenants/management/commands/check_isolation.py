"""``manage.py check_isolation``: list rows that tie one tenant to another; exit 1 if there are any."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from cot.database.commands import CrossTenantCommand
from tenants.services.isolation import do_check_isolation


class Command(CrossTenantCommand):
    cross_tenant_path = "isolation.check"

    help = (
        "Look for rows of one tenant that point at another tenant's data (foreign keys between tenants, "
        "permission rows, role memberships, payload rows of another tenant's devices). Prints each row, "
        "records the run in the platform's audit trail, mails the operators when it finds any, and exits "
        "1 if it does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the findings as JSON lines.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = do_check_isolation()
        for finding in result.findings:
            line = json.dumps(finding.as_dict()) if options["json"] else str(finding)
            self.stdout.write(line)
        for name in result.truncated:
            self.stderr.write(f"{name}: more rows than shown")
        if result.clean:
            self.stdout.write(self.style.SUCCESS(f"No rows tie tenants together ({result.checks} checks)."))
            return
        self.stderr.write(f"{len(result.findings)} row(s) tie tenants together ({result.checks} checks).")
        raise SystemExit(1)
