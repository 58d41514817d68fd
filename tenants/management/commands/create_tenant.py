"""``manage.py create_tenant SLUG --name NAME [--provider]``."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from audit.context import audit_context
from cot.database.commands import CrossTenantCommand
from tenants.services import do_create_tenant


class Command(CrossTenantCommand):
    help = "Create a customer tenant (or, with --provider, the single provider tenant) with its built-in roles."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--provider", action="store_true", help="the tenant of platform operators and support")

    def handle(self, *args: Any, slug: str, name: str, provider: bool, **options: Any) -> None:
        with audit_context(job="manage.py create_tenant"):
            try:
                tenant = do_create_tenant(slug=slug, name=name, provider=provider)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Created {tenant.kind} tenant '{tenant.slug}' ({tenant.name}).")
