"""Start-up checks of the notification settings (registered in ``NotificationsConfig.ready``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def allowed_networks_are_networks(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each entry of ``COT_WEBHOOK_ALLOWED_NETWORKS`` is a network: a typo must stop the start, not every webhook."""
    errors: list[checks.CheckMessage] = []
    for entry in settings.COT_WEBHOOK_ALLOWED_NETWORKS:
        if not entry.strip():
            continue
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            errors.append(
                checks.Error(
                    f"COT_WEBHOOK_ALLOWED_NETWORKS holds {entry.strip()!r}, which is not a network.",
                    hint="List networks in CIDR notation, comma-separated, e.g. 10.20.0.0/16,fd00::/8.",
                    id="notifications.E001",
                )
            )
    return errors
