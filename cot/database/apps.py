"""The app that holds the role-aware ``migrate`` and ``flush`` commands."""

from django.apps import AppConfig


class DatabaseConfig(AppConfig):
    name = "cot.database"
    label = "cot_database"
    verbose_name = "Database roles"
