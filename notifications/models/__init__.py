"""The notifications app's models, one module per subject."""

from notifications.models.deliveries import Delivery
from notifications.models.rules import EVENT_OF_AUDIT, EVENTS, SEVERITIES, NotificationRule

__all__ = ["EVENTS", "EVENT_OF_AUDIT", "SEVERITIES", "Delivery", "NotificationRule"]
