"""JSON errors for every API failure, including Django's own exceptions from services.

DRF answers errors inside its views; ``api_not_found`` and the ``json_or_page`` handlers
(wired in ``cot.urls``) answer the rest under ``/api/`` in JSON as well: unknown URLs
(also with ``DEBUG`` on, where Django would show its HTML page), and errors raised
outside any API view. Everywhere else Django's own pages answer.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cot.exceptions import Conflict


class ConflictError(exceptions.APIException):
    """409: the row's state forbids the request, or changed under it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: service-layer ``ValidationError`` becomes a 400 with field errors, ``Conflict`` a 409."""
    if isinstance(exc, ProtectedError | RestrictedError):
        # A service should have said what is in the way (409 with counts); never a 500 if one did not.
        exc = ConflictError({"detail": ["Other records still refer to this one; nothing was deleted."]})
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = ConflictError(detail) if isinstance(exc, Conflict) else exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


@csrf_exempt  # a JSON 404 for any method; CSRF would otherwise answer unsafe ones with an HTML 403
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The last URL under ``/api/``: whatever no endpoint matched is a JSON 404 (with a hint for a missing slash)."""
    path = request.path_info
    detail = f"No API endpoint at {path}; see /api/schema/."
    if not path.endswith("/"):
        try:
            match = resolve(path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail = f"No API endpoint at {path}; the URL ends with a slash: {path}/"
    return JsonResponse({"detail": detail}, status=404)


def _json_or_page(status_code: int, detail: str, page: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def handler(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _is_api(request):
            return JsonResponse({"detail": detail}, status=status_code)
        return page(request, *args, **kwargs)

    return handler


handler400 = _json_or_page(400, "Bad request.", defaults.bad_request)
handler403 = _json_or_page(403, "You do not have permission to perform this action.", defaults.permission_denied)
handler404 = _json_or_page(404, "Not found.", defaults.page_not_found)
handler500 = _json_or_page(500, "Server error; it was logged. Try again later.", defaults.server_error)
