"""``manage.py create_api_token EMAIL --name NAME --scope read|write [--days N]``."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from audit.context import audit_context
from cot.database.commands import CrossTenantCommand
from tenants.models import ApiToken, User
from tenants.services import do_create_api_token


class Command(CrossTenantCommand):
    help = "Create an API token for a user. The token is printed once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", required=True, choices=ApiToken.Scope.values)
        parser.add_argument("--days", type=int, default=None, help="lifetime (default 90, capped by tenant policy)")

    def handle(self, *args: Any, email: str, name: str, scope: str, days: int | None, **options: Any) -> None:
        user = User.objects.select_related("tenant", "role").filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with e-mail '{email}'.")
        with audit_context(job="manage.py create_api_token"):
            try:
                token, secret = do_create_api_token(user=user, name=name, scope=scope, days=days, actor=None)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"Token '{token.name}' ({token.scope}) for {user.email}, expires {token.expires_at:%Y-%m-%d}."
        )
        self.stdout.write("Store it now: it is not shown again.")
        self.stdout.write(secret)
