"""Access rules of the notifications app's models, registered with ``tenants.access``.

Rules decide where a tenant's alarms go, and a webhook rule mints a signing secret: the
tenant's own administrators create and change them, never a support engineer. The
deliveries are read by who reads the rules, and written by the delivery job alone.
"""

from tenants.access import admin_only, admin_view_only, register, secret_keepers


def register_rules() -> None:
    """The notifications app's models (called from ``NotificationsConfig.ready``)."""
    register("notifications.NotificationRule", admin_only, add=secret_keepers, support_never_writes=True)
    register("notifications.Delivery", admin_view_only, support_never_writes=True)
