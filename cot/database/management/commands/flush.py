"""``flush`` as the owner role: emptying every table is the owner's to do (TRUNCATE)."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlush

from cot.database.roles import as_owner


class Command(DjangoFlush):
    help = DjangoFlush.help + " Runs as the owner role (MIGRATION_DATABASE_URL)."

    def handle(self, **options: Any) -> None:
        with as_owner(options["database"]):
            super().handle(**options)
