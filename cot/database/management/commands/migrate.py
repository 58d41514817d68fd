"""``migrate`` as the owner role, then the application role's privileges (see ``cot.database.roles``)."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections, transaction

from cot.checks import startup_checks_skipped
from cot.database.roles import as_owner, grant_to_application


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " As the owner role (MIGRATION_DATABASE_URL); grants the application its rights."

    def check(self, *args: Any, **kwargs: Any) -> None:
        # The startup checks refuse a half-migrated database, which is what migrate is here to finish.
        with startup_checks_skipped():
            super().check(*args, **kwargs)

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        with as_owner(alias) as application:
            super().handle(*args, **options)
            if application is not None and not options.get("plan"):
                with transaction.atomic(using=alias):
                    grant_to_application(connections[alias], application)
