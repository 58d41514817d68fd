"""``manage.py create_user EMAIL --tenant SLUG --role ROLE [--password-stdin]``."""

import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from audit.context import audit_context
from cot.database.commands import CrossTenantCommand
from tenants.models import Role, Tenant
from tenants.services import builtin_role, do_create_user

ROLE_CHOICES = [Role.Kind.ADMINISTRATOR, Role.Kind.STANDARD, Role.Kind.BUSINESS, Role.Kind.OPERATOR, Role.Kind.SUPPORT]


class Command(CrossTenantCommand):
    help = "Create a user in a tenant with a built-in role. Without --password-stdin the user has no password yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--role", required=True, choices=[str(c) for c in ROLE_CHOICES])
        parser.add_argument("--full-name", default="")
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug '{options['tenant']}'.")
        password = sys.stdin.readline().rstrip("\n") if options["password_stdin"] else None
        with audit_context(job="manage.py create_user"):
            try:
                role = builtin_role(tenant, options["role"])
                user = do_create_user(
                    email=options["email"],
                    role=role,
                    password=password,
                    full_name=options["full_name"],
                    actor=None,
                    tenant=tenant,
                )
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Created {role.name} {user.email} in '{tenant.slug}'.")
