"""JSON errors for every API failure, including Django's own exceptions from services."""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
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
    if isinstance(exc, DjangoValidationError):
        detail: Any = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = ConflictError(detail) if isinstance(exc, Conflict) else exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
