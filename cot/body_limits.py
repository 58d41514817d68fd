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

A view that takes bigger files names the setting of its own limit:
``accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")`` on a function or admin view
(or on an action method of a DRF viewset), or ``upload_limit_setting = "..."`` on a DRF
view or viewset class (the resolved function of a DRF route is ``as_view()``'s, which
carries the class as ``.cls`` and, for viewsets, the method→action map as
``.actions``). Such an explicitly named limit also covers ``application/octet-stream``
bodies (a raw-body upload); a bare ``@accepts_uploads`` covers multipart only, as before.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

CHUNK = 64 * 1024
_UPLOADS_ATTR = "cot_accepts_uploads"
CLASS_ATTR = "upload_limit_setting"
DEFAULT_UPLOAD_SETTING = "COT_MAX_UPLOAD_BYTES"
RAW_CONTENT_TYPE = "application/octet-stream"
F = TypeVar("F", bound=Callable[..., Any])


@overload
def accepts_uploads(view: F, *, limit_setting: str | None = None) -> F: ...
@overload
def accepts_uploads(view: None = None, *, limit_setting: str | None = None) -> Callable[[F], F]: ...
def accepts_uploads(view: F | None = None, *, limit_setting: str | None = None) -> F | Callable[[F], F]:
    """Mark a view as taking file uploads, up to ``COT_MAX_UPLOAD_BYTES`` or the setting it names.

    Bare (``@accepts_uploads``) for multipart uploads within ``COT_MAX_UPLOAD_BYTES``;
    ``@accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")`` for a bigger (or smaller)
    limit read from that setting on each request, covering multipart and
    ``application/octet-stream`` bodies. Works on function views, admin view methods,
    DRF viewset action methods and view classes (there it sets ``upload_limit_setting``).
    """

    def mark(target: F) -> F:
        if isinstance(target, type):
            setattr(target, CLASS_ATTR, limit_setting or DEFAULT_UPLOAD_SETTING)
        else:
            setattr(target, _UPLOADS_ATTR, limit_setting or True)
        return target

    return mark if view is None else mark(view)


def _upload_marking(func: Any, method: str | None) -> str | bool | None:
    """What the resolved view declares: a setting name, ``True`` (bare mark) or ``None``."""
    marked = getattr(func, _UPLOADS_ATTR, None)
    if marked:
        return marked
    cls = getattr(func, "cls", None) or getattr(func, "view_class", None)
    if cls is None:
        return None
    verb = (method or "").lower()
    actions = getattr(func, "actions", None)  # a viewset's {"post": "create"}; a view's handler is the verb itself
    action = actions.get(verb) if actions else verb
    if action:
        marked = getattr(getattr(cls, action, None), _UPLOADS_ATTR, None)
        if marked:
            return marked
    return getattr(cls, CLASS_ATTR, None) or None


def body_limit(request: HttpRequest) -> int:
    """The largest body ``request`` may carry."""
    if request.content_type in ("multipart/form-data", RAW_CONTENT_TYPE):
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
        marked = _upload_marking(match.func, request.method) if match is not None else None
        if isinstance(marked, str):
            return int(getattr(settings, marked))
        if marked and request.content_type == "multipart/form-data":
            return int(getattr(settings, DEFAULT_UPLOAD_SETTING))
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    """413, as JSON on the APIs and as a page in the cockpit, naming the limit."""
    message = f"The request body is larger than this server accepts ({limit} bytes)."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message, "limit_bytes": limit}, status=413)
    page = render_to_string("cockpit/too_large.html", {"message": message}, request=None)
    return HttpResponse(page, status=413)


def length_required(request: HttpRequest) -> HttpResponse:
    """411: an upload that may be larger than ``COT_MAX_UPLOAD_BYTES`` must say how large it is."""
    message = "Send the upload with a Content-Length header; bodies of unknown length are refused here."
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": message}, status=411)
    return HttpResponse(message, status=411, content_type="text/plain; charset=utf-8")


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
            elif limit > int(getattr(settings, DEFAULT_UPLOAD_SETTING)):
                # Spooling a body this large to learn its length would cost disk before
                # anyone is authenticated; a client that sends such uploads knows the size.
                return length_required(request)
            elif not _read_chunked(request, limit):
                return too_large(request, limit)
        return self.get_response(request)
