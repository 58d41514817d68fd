"""Opens an audit context for every web request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import audit_context
from audit.request_meta import client_ip


class AuditContextMiddleware:
    """Binds the request (and so its user, resolved lazily) to the audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit_context(request=request, source=client_ip(request)) as ctx:
            response = self.get_response(request)
        response["X-Request-ID"] = ctx.request_id
        return response
