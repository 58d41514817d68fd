"""Bounded request bodies on every route, refused before they are read.

Django checks ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when a view reads ``request.body``
or ``request.POST``, and not at all for file parts; DRF reads the stream itself. So this
middleware, right after ``SecurityMiddleware``, refuses a body over the limit by its
``Content-Length`` with 413 before anything reads it. A chunked body (no length; gunicorn
passes it on decoded) is read here, at most one byte past the limit, and handed on with
its now-known length, or refused the moment it grows past the limit.

Limits: ``COT_MAX_REQUEST_BYTES`` for every body; multipart uploads to views marked
``accepts_uploads`` get ``COT_MAX_UPLOAD_BYTES`` (their files are streamed to disk by
Django's upload handlers, never held whole in memory). Every other page, the login
among them, keeps the small limit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

CHUNK = 64 * 1024
_UPLOADS_ATTR = "cot_accepts_uploads"
F = TypeVar("F", bound=Callable[..., Any])


def accepts_uploads(view: F) -> F:
    """Mark a view (or admin view method) as taking file uploads up to ``COT_MAX_UPLOAD_BYTES``."""
    setattr(view, _UPLOADS_ATTR, True)
    return view


def body_limit(request: HttpRequest) -> int:
    """The largest body ``request`` may carry."""
    if request.content_type == "multipart/form-data":
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        if match is not None and getattr(match.func, _UPLOADS_ATTR, False):
            return int(settings.COT_MAX_UPLOAD_BYTES)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    """413, as JSON on the APIs and as a page in the cockpit, naming the limit."""
    message = f"The request body is larger than this server accepts ({limit} bytes)."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message, "limit_bytes": limit}, status=413)
    page = render_to_string("cockpit/too_large.html", {"message": message}, request=None)
    return HttpResponse(page, status=413)


def _read_chunked(request: HttpRequest, limit: int) -> bool:
    """Read a body of unknown length into a spooled file; ``False`` as soon as it passes ``limit``."""
    source = request.META["wsgi.input"]
    spooled = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115
    total = 0
    while chunk := source.read(min(CHUNK, limit + 1 - total)):
        total += len(chunk)
        if total > limit:
            spooled.close()
            return False
        spooled.write(chunk)
    spooled.seek(0)
    request.META["CONTENT_LENGTH"] = str(total)
    stream: Any = LimitedStream(spooled, total)  # type: ignore[arg-type]  # any readable stream will do
    request._stream = stream
    return True


class RequestBodyLimitMiddleware:
    """Refuse request bodies over their limit with 413 before any view reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH")
        if declared or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            limit = body_limit(request)
            if declared:
                try:
                    length = int(declared)
                except ValueError:
                    return JsonResponse({"detail": "Content-Length is not a number."}, status=400)
                if length > limit:
                    return too_large(request, limit)
            elif not _read_chunked(request, limit):
                return too_large(request, limit)
        return self.get_response(request)
