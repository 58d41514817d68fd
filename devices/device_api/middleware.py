"""A short middleware path for the device API.

Device requests carry a bearer credential and nothing a browser brings: no session, no
CSRF token, no cookie-borne login, no second factor, no support grant. Running them
through the cockpit's middleware (sessions, authentication, OTP, messages, suspension,
support grants, lockout) only costs time on the busiest path of the system, so this
middleware, placed right after ``SecurityMiddleware``, answers ``/api/device/`` itself:
it validates the Host header as ``CommonMiddleware`` would, opens the audit context as
``AuditContextMiddleware`` does, resolves against the device API's own URLconf and
calls the view. Everything else passes on down the full stack.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, get_resolver

from audit.middleware import audit_request

PREFIX = "/api/device/v1/"


class DeviceAPIMiddleware:
    """Serve ``/api/device/v1/`` with only the middleware a device request needs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.resolver = get_resolver("devices.device_api.urls")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(PREFIX):
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for hosts outside ALLOWED_HOSTS, as CommonMiddleware does.
        return audit_request(request, self._call_view)

    def _call_view(self, request: HttpRequest) -> HttpResponse:
        try:
            # The device URLconf's paths are relative to the prefix; a root resolver expects "/…".
            match = self.resolver.resolve(request.path_info[len(PREFIX) - 1 :])
        except Resolver404:
            return JsonResponse({"detail": "No such device endpoint."}, status=404)
        request.resolver_match = match
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        return response
