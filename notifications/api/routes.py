"""The notifications app's ``/api/v1/`` endpoints, registered from ``NotificationsConfig.ready()``."""

from cot.api.routes import register
from notifications.api.views import NotificationRuleViewSet


def register_routes() -> None:
    """Notification rules (and, below each, its deliveries)."""
    register("notification-rules", NotificationRuleViewSet, basename="notificationrule")
