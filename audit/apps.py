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
