"""The notifications app's writes, one module per subject."""

from notifications.services.rules import (
    do_create_notification_rule,
    do_delete_notification_rule,
    do_rotate_webhook_secret,
    do_update_notification_rule,
)

__all__ = [
    "do_create_notification_rule",
    "do_delete_notification_rule",
    "do_rotate_webhook_secret",
    "do_update_notification_rule",
]
