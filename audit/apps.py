"""Audit trail app."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        from audit import receivers  # noqa: F401  (connects the login signal receivers)
        from audit.access import register_rules

        register_rules()
        from audit.api.routes import register_routes

        register_routes()
        from audit.models import AuditEntry
        from cot.database.roles import limit

        # Append-only for the application's own database role: no UPDATE, DELETE or TRUNCATE.
        limit(AuditEntry._meta.db_table, ("SELECT", "INSERT"))
