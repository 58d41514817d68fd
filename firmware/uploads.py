"""Streamed, hashing firmware uploads: the server computes SHA-256 and size while the bytes arrive.

Why: firmware images are large (up to ``COT_MAX_FIRMWARE_BYTES``), so they are never held
in memory, and the hash the blob is stored under (``firmware.storage``) is the server's
own, computed in the same pass that writes the temporary file; a client-supplied hash is
only compared with it.

How a view uses it:

1. ``cot.body_limits`` already refused a body over the platform ceiling by its length
   (mark the view ``accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")``, or set
   ``upload_limit_setting`` on the viewset class).
2. Once the tenant is known, ``check_declared_length(request, limit)`` refuses a body
   that cannot fit the tenant's limit, unread, and ``use_hashing_uploads(request, limit)``
   installs ``HashingUploadHandler`` as the request's only upload handler. This must
   happen before anything parses the body. DRF parses lazily (on the first access to
   ``request.data`` / ``request.FILES``), so a viewset may do both in ``initial()`` after
   ``super().initial()`` has authenticated the caller.
3. Reading ``request.FILES`` then streams each file part to a temporary file on disk,
   hashing and counting it; the file carries ``.sha256`` and ``.size``. A part over the
   limit raises ``FileTooLarge`` (a DRF ``APIException`` with status 413, so DRF views
   answer it themselves; cockpit views catch it and answer
   ``cot.body_limits.too_large(request, exc.limit)``). Its temporary file is removed.

Pitfall: Django's CSRF check reads ``request.POST``, which parses a multipart body with
the default handlers. For session-authenticated requests (the cockpit, and DRF's
``SessionAuthentication``) install the handler before the CSRF check: a cockpit view is
``csrf_exempt`` and calls ``csrf_protect`` itself after ``use_hashing_uploads``; on the
API, token-authenticated requests have no CSRF check. When it is too late,
``use_hashing_uploads`` raises ``AttributeError`` rather than silently hashing nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest
from rest_framework import status
from rest_framework.exceptions import APIException

# Room for the multipart framing and small form fields next to a file of exactly the limit
# (boundaries, part headers, name/version/notes). The exact limit is enforced per file
# part while streaming; this only lets the early refusal by length be generous enough.
MULTIPART_SLACK = 64 * 1024


class FileTooLarge(APIException):
    """A file (or the body announcing it) is over the upload limit: 413, naming the limit.

    An ``APIException`` so DRF views answer it with 413 on their own; cockpit views catch
    it and answer ``cot.body_limits.too_large(request, exc.limit)``.
    """

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"The file is larger than this server accepts ({limit} bytes).")


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Streams every file part to a temporary file on disk, hashing and counting it as it goes.

    The resulting ``TemporaryUploadedFile`` carries ``.sha256`` (lowercase hex) and
    ``.size`` (bytes received). Small files go to disk too: installed as the only handler,
    nothing is ever kept in memory. A part over ``max_bytes`` raises ``FileTooLarge``
    after removing its temporary file (rather than ``StopUpload``, which would end the
    parse quietly and leave the view with a silently missing file).
    """

    max_bytes: int | None = None

    def __init__(self, request: Any = None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        if max_bytes is not None:
            self.max_bytes = max_bytes
        self._digest: Any = None
        self._received = 0

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        """Start a part: a fresh temporary file, hash and count."""
        super().new_file(*args, **kwargs)
        self._digest = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        """Hash and count the chunk, refuse it once the part is over the limit, else write it to disk."""
        self._received += len(raw_data)
        if self.max_bytes is not None and self._received > self.max_bytes:
            self.upload_interrupted()  # closes and removes the temporary file
            raise FileTooLarge(self.max_bytes)
        self._digest.update(raw_data)
        super().receive_data_chunk(raw_data, start)
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        """Finish the part: the file, rewound, with the server's ``sha256`` and ``size``."""
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.size = self._received
            uploaded.sha256 = self._digest.hexdigest()  # type: ignore[attr-defined]
        return uploaded


def use_hashing_uploads(request: Any, max_bytes: int) -> HashingUploadHandler:
    """Make ``HashingUploadHandler`` (with ``max_bytes`` per file part) the request's only upload handler.

    Call it before the body is parsed: for a DRF view in ``initial()`` after
    authentication, when the tenant's limit is known (DRF parses lazily). Accepts a
    Django ``HttpRequest`` or a DRF ``Request`` (the handler goes on the underlying
    request, which both parse with). Raises ``AttributeError`` when the body was already
    parsed (see the module's note on CSRF). Returns the handler, whose ``max_bytes`` may
    still be lowered before the body is read.
    """
    django_request: HttpRequest = getattr(request, "_request", request)
    handler = HashingUploadHandler(django_request, max_bytes=max_bytes)
    django_request.upload_handlers = [handler]
    return handler


def check_declared_length(request: Any, max_bytes: int) -> None:
    """Refuse (``FileTooLarge``) a body whose ``Content-Length`` cannot hold a file within ``max_bytes``.

    Cheap and early, before a byte of the body is read: a tenant over its limit is not
    made to upload 500 MB to hear no. ``MULTIPART_SLACK`` leaves room for the framing and
    small fields; the exact per-file limit is the handler's. A body without a length
    (chunked) is left to the handler.
    """
    declared = getattr(request, "META", {}).get("CONTENT_LENGTH")
    try:
        length = int(declared) if declared else None
    except ValueError:
        length = None  # cot.body_limits answers a malformed length with 400 before any view
    if length is not None and length > max_bytes + MULTIPART_SLACK:
        raise FileTooLarge(max_bytes)
