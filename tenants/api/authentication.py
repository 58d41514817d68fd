"""API authentication: Bearer API tokens, and cockpit sessions that passed 2FA."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from cot.database.scope import cross_tenant
from tenants.access import came_with_token
from tenants.auth_backends import enter_tenant_of
from tenants.models import ApiToken
from tenants.policy import session_is_fully_authenticated
from tenants.tokens import secret_digest

LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer cot_pat_…``: one indexed lookup by keyed hash."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, secret = header.partition(" ")
        if keyword != self.keyword:
            return None
        secret = secret.strip()
        if not secret.startswith(settings.API_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("Invalid token.")
        with cross_tenant("api.token"):
            token = (
                ApiToken.objects.select_related("user__tenant", "user__role")
                .filter(digest=secret_digest(secret))
                .first()
            )
        if token is None or not token.is_usable or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if not token.user.tenant.is_active:
            raise exceptions.AuthenticationFailed("Your organisation's access is suspended.")
        enter_tenant_of(token.user)
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        came_with_token(token.user, read_only=token.scope == ApiToken.Scope.READ)
        # The audit context reads these from the Django request.
        request._request.cot_api_token = token
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return f'{self.keyword} realm="api"'


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """Cockpit sessions, only once their second factor is verified where required."""

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        if not session_is_fully_authenticated(request._request):
            return None
        return super().authenticate(request)
