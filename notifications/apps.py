"""Notifications: alarms and events to e-mail or signed webhooks, per tenant rules."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications import checks, receivers  # noqa: F401  (registers the checks; connects to the signals)
        from notifications.access import register_rules
        from notifications.api.routes import register_routes

        register_rules()
        register_routes()
