"""User-API rate limits: token buckets per API token (or session user) and per tenant."""

from typing import Any

from cot import ratelimit


class ApiRateThrottle:
    """One Redis round trip charges the caller's token bucket and their tenant's.

    Refusals name the limit; ``wait`` gives ``Retry-After``. Anonymous requests are
    refused by authentication before they cost anything here.
    """

    def __init__(self) -> None:
        self.refusal: ratelimit.Refusal | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return True
        tenant = user.tenant
        token = getattr(request._request, "cot_api_token", None)
        subject = f"token-{token.pk}" if token is not None else f"user-{user.pk}"
        limits = ratelimit.limits_for("token", subject, tenant.rates("token"))
        limits += ratelimit.limits_for("tenant_api", tenant.pk, tenant.rates("tenant_api"))
        self.refusal = ratelimit.check(limits)
        return self.refusal is None

    def wait(self) -> float | None:
        return float(self.refusal.retry_after) if self.refusal else None

    @property
    def detail(self) -> str:
        return self.refusal.message if self.refusal else ""
