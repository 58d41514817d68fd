"""Puts a support engineer's session inside the granted tenant, and audits every request there."""

import hashlib
from collections.abc import Callable

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

import audit
from cot.database.scope import cross_tenant, enter_tenant
from tenants.access import enter_support_grant
from tenants.models import Role, SupportGrant
from tenants.policy import PASSKEY_REQUIRED_FOR_SUPPORT, meets_support_tenant_policy

SUPPORT_GRANT_SESSION_KEY = "cot_support_grant"
# A live page's own refresh of what was recorded this recently is not recorded again.
REPEATED_POLL_SECONDS = 600


def mark_live_refresh(request: HttpRequest) -> None:
    """Say that this response is a live page's periodic refresh (the dashboard's panels, a device page's
    live part, the device list's rows), which a support session records once per ten minutes."""
    request.cot_live_refresh = True  # type: ignore[attr-defined]


def _poll_key(request: HttpRequest, grant: SupportGrant, status: int) -> str | None:
    """The key under which a live refresh is remembered, or ``None`` for anything else (always recorded).

    Only views that call ``mark_live_refresh`` qualify, whatever headers the client sends;
    the answer's status is part of the key, so a read that once failed and now succeeds
    is recorded again.
    """
    if request.method != "GET" or not getattr(request, "cot_live_refresh", False):
        return None
    seen = f"{grant.pk}|{request.session.session_key}|{request.path}|{request.META.get('QUERY_STRING', '')}|{status}"
    return "cot:support-poll:" + hashlib.sha256(seen.encode()).hexdigest()


class SupportGrantMiddleware:
    """Checks the session's grant on every request; a grant no longer usable is dropped at once."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        grant = self._grant_for(request)
        request.support_grant = grant  # type: ignore[attr-defined]
        response = self.get_response(request)
        if grant is None:
            return response
        # A live page's refresh of what was recorded in the last ten minutes is not recorded
        # again: an open dashboard asks every 30 s. The first of each path, query and status
        # always is, so whatever the engineer read is named in the trail.
        poll = _poll_key(request, grant, response.status_code)
        if poll is None or cache.get(poll) is None:
            # "Everything they do is audited": one entry per request under the grant, with
            # its query string, so the customer sees what was searched, filtered and exported.
            audit.record(
                "support.request",
                tenant=grant.tenant_id,
                data={
                    "method": request.method,
                    "path": request.path[:500],
                    "query": request.META.get("QUERY_STRING", "")[:2000],
                    "status": response.status_code,
                },
            )
            if poll is not None:  # remembered only once recorded
                cache.set(poll, 1, REPEATED_POLL_SECONDS)
        return response

    @staticmethod
    def _grant_for(request: HttpRequest) -> SupportGrant | None:
        user = request.user
        grant_id = request.session.get(SUPPORT_GRANT_SESSION_KEY) if user.is_authenticated else None
        if grant_id is None:
            return None
        with cross_tenant("support.session"):
            grant = SupportGrant.objects.select_related("tenant").filter(pk=grant_id).first()
        role = getattr(user, "role", None)
        if grant is None or role is None or role.kind != Role.Kind.SUPPORT or not grant.usable_by(user):
            del request.session[SUPPORT_GRANT_SESSION_KEY]
            messages.warning(request, "Your support access has ended (expired or revoked by the customer).")
            return None
        if not meets_support_tenant_policy(request, grant.tenant):
            del request.session[SUPPORT_GRANT_SESSION_KEY]
            messages.warning(request, PASSKEY_REQUIRED_FOR_SUPPORT)
            return None
        enter_support_grant(user, grant)  # type: ignore[arg-type]
        enter_tenant(grant.tenant_id)
        return grant
