"""Ends sessions of suspended tenants, deactivated users and idle users on their next request."""

import time
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

import audit
from tenants.access import closed_for_maintenance, maintenance_notice
from tenants.models import Tenant

LAST_SEEN_KEY = "cot_last_seen"


class TenantSessionMiddleware:
    """Applies the tenant's status and idle-timeout policy to every session request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated:
            reason = self._reason_to_end(request)
            if reason:
                audit.record(
                    "auth.session_end", tenant=user.tenant_id, target=user, actor=user, data={"reason": reason}
                )
                logout(request)
                messages.warning(request, reason)
            else:
                request.session[LAST_SEEN_KEY] = int(time.time())
        return self.get_response(request)

    @staticmethod
    def _reason_to_end(request: HttpRequest) -> str:
        user = request.user
        tenant = user.tenant  # type: ignore[union-attr]
        if not tenant.is_active:
            return "Your organisation's access is suspended. Contact your provider."
        last_seen = request.session.get(LAST_SEEN_KEY)
        if last_seen is not None and time.time() - last_seen > tenant.session_idle_minutes * 60:
            return "You were logged out after a period of inactivity."
        return ""


class MaintenanceMiddleware:
    """Answers everyone working in a tenant closed for maintenance with the notice (503), and nothing else.

    After ``SupportGrantMiddleware``, so a support engineer inside a closed tenant's grant
    gets the notice too. Logging out stays possible.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        closed = closed_for_maintenance(request.user)
        if closed is not None and not request.path.endswith("/logout/"):
            return maintenance_response(request, closed)
        return self.get_response(request)


def maintenance_response(request: HttpRequest, tenant: Tenant) -> HttpResponse:
    """503 for everyone working in a tenant closed for maintenance: JSON under /api/, a page elsewhere."""
    notice = maintenance_notice(tenant)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": notice, "code": "tenant_maintenance"}, status=503)
    else:
        response = render(request, "cockpit/maintenance.html", {"notice": notice}, status=503)
    response["Retry-After"] = "60"
    return response
