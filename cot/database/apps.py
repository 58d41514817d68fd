"""The app that holds the role-aware ``migrate`` and ``flush`` commands."""

from django.apps import AppConfig


class DatabaseConfig(AppConfig):
    name = "cot.database"
    label = "cot_database"
    verbose_name = "Database roles"

    def ready(self) -> None:
        from cot.database.roles import limit

        # Which migrations ran is the owner's record; the application only reads it.
        limit("django_migrations", ("SELECT",))
