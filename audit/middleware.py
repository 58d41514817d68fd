"""Opens an audit context for every web request."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from audit.context import audit_context
from audit.request_meta import client_ip


def audit_request(request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse]) -> HttpResponse:
    """Answer ``request`` inside an audit context; the response names the request id.

    Refusals that happened inside an outer transaction of the request (and so were
    rolled back with it) are recorded here, after it.
    """
    with audit_context(request=request, source=client_ip(request)) as ctx:
        try:
            response = get_response(request)
        finally:
            for refusal in ctx.refusals:
                refusal.record()
    response["X-Request-ID"] = ctx.request_id
    return response


class AuditContextMiddleware:
    """Binds the request (and so its user, resolved lazily) to the audit trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return audit_request(request, self.get_response)
