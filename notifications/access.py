"""Access rules of the notifications app's models, registered with ``tenants.access``.

Rules decide where a tenant's alarms go, a webhook rule mints a signing secret, and a
webhook URL is often a secret itself (chat services put their token in it): the tenant's
own administrators see, create and change them, never a support engineer, whatever the
grant. The deliveries are read by who reads the rules, and written by the delivery job alone.
"""

from typing import Any

from django.db.models import QuerySet

from tenants.access import Caller, pinned, register, secret_keepers
from tenants.models import Action


def own_administrators(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """The tenant's own administrators (never support), every row of the tenant; nobody else."""
    return pinned(qs, caller) if caller.is_admin and caller.support_grant is None else qs.none()


def delivery_rule(qs: QuerySet[Any], caller: Caller, action: str) -> QuerySet[Any]:
    """The tenant's own administrators read the deliveries; only the delivery job writes them."""
    return own_administrators(qs, caller, action) if action == Action.VIEW else qs.none()


def register_rules() -> None:
    """The notifications app's models (called from ``NotificationsConfig.ready``)."""
    register("notifications.NotificationRule", own_administrators, add=secret_keepers, support_never_writes=True)
    register("notifications.Delivery", delivery_rule, support_never_writes=True)
