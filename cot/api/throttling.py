"""Request-rate limits per API token (or session) and per tenant, counted in Redis."""

from typing import Any

from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """One bucket per API token; session callers count per user, anonymous per address."""

    scope = "token"

    def get_cache_key(self, request: Any, view: Any) -> str:
        token = getattr(request._request, "cot_api_token", None)
        if token is not None:
            ident = f"token:{token.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"addr:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"


class TenantRateThrottle(SimpleRateThrottle):
    """One bucket per tenant, shared by all its users and tokens."""

    scope = "tenant"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = request.user
        if user is None or not user.is_authenticated:
            return None
        return f"throttle:{self.scope}:{user.tenant_id}"
