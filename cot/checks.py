"""Deployment checks of the platform's own settings (``manage.py check --deploy``)."""

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security, deploy=True)
def trusted_proxies_named(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Behind a reverse proxy, every client would otherwise share the proxy's address."""
    if settings.TRUSTED_PROXIES:
        return []
    return [
        checks.Warning(
            "COT_TRUSTED_PROXIES is empty: behind nginx (or any reverse proxy) every request seems to come from "
            "the proxy, so per-address limits (logins, device registration) apply to all clients at once and the "
            "audit trail records the proxy's address.",
            hint="Set COT_TRUSTED_PROXIES to the proxy's address, or silence cot.W001 if clients reach gunicorn "
            "directly.",
            id="cot.W001",
        )
    ]
