"""Every request starts with no tenant and ends with none (``cot.database.scope``)."""

from collections.abc import Callable, Iterable, Iterator

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

from cot.database.scope import current_scope, request_scope, run_in_scope


class RequestScopeMiddleware:
    """Outermost of the middlewares that touch the database; the tenant entered inside ends with the request.

    Threads serve one request after another (gunicorn's gthread workers), so a tenant left
    over from the previous request would be a leak. A streamed body (the audit export) is
    produced after this returns: it keeps the request's tenant, chunk by chunk.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            response = self.get_response(request)
            scope = current_scope()
        if scope and isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse):
            response.streaming_content = _in_scope(scope, response.streaming_content)
        return response


def _in_scope(scope: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    iterator = iter(chunks)
    while True:
        chunk = run_in_scope(scope, next, iterator, None)
        if chunk is None:
            return
        yield chunk
