"""Keyset (cursor) pagination: constant cost per page however deep the list is.

Strict about its parameters: a ``page_size`` that is not a whole number from 1 to
``API_MAX_PAGE_SIZE`` and a cursor this API did not hand out are a 400 saying so, never
silently ignored and never a database error.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

INVALID_CURSOR = "Not a cursor this API handed out: follow the 'next' and 'previous' links as given."


class IdCursorPagination(CursorPagination):
    """Newest first by id, ``?page_size=`` from 1 to ``API_MAX_PAGE_SIZE``."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self._model = queryset.model  # the cursor's position is checked against its ordering field
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            assert self.page_size is not None  # REST_FRAMEWORK["PAGE_SIZE"]
            return self.page_size
        if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None:
            try:  # DRF's own decoding would drop characters outside base64 and go on
                base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
            if not encoded:
                raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            ordering = self.ordering[0] if isinstance(self.ordering, (list, tuple)) else self.ordering
            field = self._model._meta.get_field(ordering.lstrip("-"))
            try:
                position = field.to_python(cursor.position)
            except (DjangoValidationError, ValueError, TypeError, OverflowError):
                position = None
            if position is None or (isinstance(position, int) and not -(2**63) <= position < 2**63):
                raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]})
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return parameters
