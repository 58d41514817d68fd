"""``migrate`` as the owner role, then the application role's privileges (see ``cot.database.roles``)."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections, transaction

from cot.database.roles import as_owner, grant_to_application


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " As the owner role (MIGRATION_DATABASE_URL); grants the application its rights."

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        with as_owner(alias) as application:
            super().handle(*args, **options)
            if application is not None and not options.get("plan"):
                with transaction.atomic(using=alias):
                    grant_to_application(connections[alias], application)
