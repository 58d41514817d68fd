"""Streamed hashing uploads (firmware.uploads) and per-view upload limits (cot.body_limits)."""

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.http import HttpRequest, JsonResponse
from django.test import RequestFactory, override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, ClientHandler, encode_multipart
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework import viewsets
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from cot.body_limits import accepts_uploads
from firmware.uploads import (
    MULTIPART_SLACK,
    FileTooLarge,
    HashingUploadHandler,
    check_declared_length,
    use_hashing_uploads,
)

REQUEST_LIMIT = 1_000
UPLOAD_LIMIT = 4_000
FIRMWARE_LIMIT = 200_000
TENANT_LIMIT = 100_000  # what the test viewset allows per file: below the platform's ceiling


def multipart(size: int, **fields: Any) -> tuple[bytes, bytes]:
    """A multipart body with one ``size``-byte file part, and the file's bytes."""
    data = bytes(range(256)) * (size // 256) + b"\x01" * (size % 256)
    return encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("fw.bin", data), **fields}), data


# --- the handler, on a request parsed in the test ----------------------------------------


@pytest.fixture(autouse=True)
def upload_temp_dir(tmp_path: Path) -> Any:
    temp = tmp_path / "uploads"
    temp.mkdir()
    with override_settings(FILE_UPLOAD_TEMP_DIR=str(temp)):
        yield temp


def parsed_request(body: bytes) -> HttpRequest:
    # An equal string, not MULTIPART_CONTENT itself: the factory would encode ``body`` again.
    return RequestFactory().post("/upload/", data=body, content_type=f"multipart/form-data; boundary={BOUNDARY}")


def test_handler_hashes_and_counts_while_streaming_to_disk():
    body, data = multipart(300_000, version="1.2.3")
    request = parsed_request(body)
    handler = use_hashing_uploads(request, max_bytes=len(data))
    assert request.upload_handlers == [handler]  # the only handler: nothing goes to memory
    uploaded = request.FILES["file"]
    assert isinstance(uploaded, TemporaryUploadedFile)
    assert uploaded.sha256 == hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]
    assert uploaded.size == len(data)
    assert uploaded.read() == data
    assert request.POST["version"] == "1.2.3"


def test_small_files_go_to_disk_too():
    body, data = multipart(10)
    request = parsed_request(body)
    use_hashing_uploads(request, max_bytes=1000)
    uploaded = request.FILES["file"]
    assert isinstance(uploaded, TemporaryUploadedFile)
    assert os.path.exists(uploaded.temporary_file_path())
    assert uploaded.sha256 == hashlib.sha256(data).hexdigest()  # type: ignore[attr-defined]


def test_each_part_has_its_own_hash():
    one, two = b"first image", b"second image, longer"
    body = encode_multipart(BOUNDARY, {"a": SimpleUploadedFile("a.bin", one), "b": SimpleUploadedFile("b.bin", two)})
    request = parsed_request(body)
    use_hashing_uploads(request, max_bytes=100)
    a: Any = request.FILES["a"]
    b: Any = request.FILES["b"]
    assert (a.sha256, b.sha256) == (hashlib.sha256(one).hexdigest(), hashlib.sha256(two).hexdigest())
    assert (a.size, b.size) == (len(one), len(two))


def test_part_over_the_limit_is_refused_and_leaves_no_temporary_file(upload_temp_dir):
    body, data = multipart(300_000)
    request = parsed_request(body)
    handler = use_hashing_uploads(request, max_bytes=len(data) - 1)
    with pytest.raises(FileTooLarge) as refused:
        request.FILES  # noqa: B018 (parses the body)
    assert refused.value.limit == len(data) - 1 and refused.value.status_code == 413
    assert not os.path.exists(handler.file.temporary_file_path())
    assert list(upload_temp_dir.iterdir()) == []


def test_handlers_cannot_be_swapped_after_parsing():
    request = parsed_request(multipart(10)[0])
    request.FILES  # noqa: B018 (parsed with the default handlers, e.g. by a CSRF check)
    with pytest.raises(AttributeError):
        use_hashing_uploads(request, max_bytes=1000)


def test_drf_request_gets_the_handler_on_the_underlying_request():
    body, data = multipart(500)
    django_request = parsed_request(body)
    request = Request(django_request, parsers=[MultiPartParser()])
    use_hashing_uploads(request, max_bytes=1000)
    assert isinstance(django_request.upload_handlers[0], HashingUploadHandler)
    assert request.FILES["file"].sha256 == hashlib.sha256(data).hexdigest()


def test_declared_length_is_checked_before_reading():
    request = RequestFactory().post("/upload/", data=b"x" * 10, content_type="application/octet-stream")
    request.META["CONTENT_LENGTH"] = str(5000 + MULTIPART_SLACK + 1)
    with pytest.raises(FileTooLarge) as refused:
        check_declared_length(request, 5000)
    assert refused.value.limit == 5000
    request.META["CONTENT_LENGTH"] = str(5000 + MULTIPART_SLACK)
    check_declared_length(request, 5000)  # framing around a file of exactly the limit fits
    del request.META["CONTENT_LENGTH"]
    check_declared_length(request, 5000)  # chunked: left to the handler


# --- per-view limits in cot.body_limits, through the whole middleware stack ---------------


@accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")
@csrf_exempt
def firmware_view(request: HttpRequest) -> JsonResponse:
    use_hashing_uploads(request, settings.COT_MAX_FIRMWARE_BYTES)
    uploaded: Any = request.FILES["file"]
    return JsonResponse({"sha256": uploaded.sha256, "size": uploaded.size})


@accepts_uploads
@csrf_exempt
def csv_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"files": len(request.FILES)})


@csrf_exempt
def unmarked_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"files": len(request.FILES)})


class FirmwareViewSet(viewsets.ViewSet):
    """A tiny upload viewset: the class names its limit, the tenant's limit is applied in initial()."""

    upload_limit_setting = "COT_MAX_FIRMWARE_BYTES"
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    parser_classes = [MultiPartParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        check_declared_length(request, TENANT_LIMIT)
        use_hashing_uploads(request, TENANT_LIMIT)

    def create(self, request: Request) -> Response:
        uploaded = request.FILES["file"]
        return Response({"sha256": uploaded.sha256, "size": uploaded.size}, status=201)


class MarkedActionViewSet(viewsets.ViewSet):
    """Only the create action is marked, on the method: other actions keep the small limit."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    parser_classes = [MultiPartParser]

    @accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")
    def create(self, request: Request) -> Response:
        return Response({"files": len(request.FILES)}, status=201)

    def update(self, request: Request) -> Response:
        return Response({"files": len(request.FILES)})


urlpatterns = [
    path("upload/firmware/", firmware_view),
    path("upload/csv/", csv_view),
    path("upload/other/", unmarked_view),
    path("api/v1/firmware-test/", FirmwareViewSet.as_view({"post": "create"})),
    path("api/v1/marked-action/", MarkedActionViewSet.as_view({"post": "create", "put": "update"})),
]


class CountingStream(io.BytesIO):
    """A request body that remembers how much of it was read."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed = getattr(self, "consumed", 0) + len(data)
        return data


def call(
    url: str, body: bytes, *, method: str = "POST", content_type: str = MULTIPART_CONTENT, chunked: bool = False
) -> tuple[int, Any, CountingStream]:
    """Send ``body`` through the whole WSGI stack, as gunicorn would hand it over."""
    environ = RequestFactory().generic(method, url).environ
    environ["CONTENT_TYPE"] = content_type
    stream = CountingStream(body)
    environ["wsgi.input"] = stream
    if chunked:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    response: Any = ClientHandler()(environ)
    content = response.content
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    return response.status_code, json.loads(content) if is_json else content, stream


@pytest.fixture
def small_limits(settings: Any) -> None:
    settings.ROOT_URLCONF = __name__
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_LIMIT
    settings.COT_MAX_UPLOAD_BYTES = UPLOAD_LIMIT
    settings.COT_MAX_FIRMWARE_BYTES = FIRMWARE_LIMIT


@pytest.mark.django_db
def test_firmware_view_takes_more_than_the_upload_limit(small_limits):
    body, data = multipart(50_000)
    status, content, _ = call("/upload/firmware/", body)
    assert status == 200, content
    assert content == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # The same body to the CSV upload (bare mark) and to an unmarked view: refused, unread.
    for url in ("/upload/csv/", "/upload/other/"):
        status, _, stream = call(url, body)
        assert status == 413 and getattr(stream, "consumed", 0) == 0


@pytest.mark.django_db
def test_firmware_view_refuses_over_its_limit_before_reading(small_limits):
    body, _ = multipart(FIRMWARE_LIMIT + 1)
    status, content, stream = call("/upload/firmware/", body)
    assert status == 413
    assert f"{FIRMWARE_LIMIT} bytes" in content.decode()
    assert getattr(stream, "consumed", 0) == 0


@pytest.mark.django_db
def test_drf_viewset_class_marked_with_the_firmware_limit(small_limits):
    body, data = multipart(50_000)
    status, content, _ = call("/api/v1/firmware-test/", body)
    assert status == 201, content
    assert content == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    # Over the platform ceiling: the middleware's JSON 413, unread.
    status, content, stream = call("/api/v1/firmware-test/", multipart(FIRMWARE_LIMIT + 1)[0])
    assert status == 413 and content["limit_bytes"] == FIRMWARE_LIMIT
    assert getattr(stream, "consumed", 0) == 0


@pytest.mark.django_db
def test_tenant_limit_below_the_ceiling(small_limits):
    # By its length: refused in initial(), unread.
    body, _ = multipart(TENANT_LIMIT + MULTIPART_SLACK + 1)
    assert len(body) <= FIRMWARE_LIMIT
    status, content, stream = call("/api/v1/firmware-test/", body)
    assert status == 413 and str(TENANT_LIMIT) in content["detail"]
    assert getattr(stream, "consumed", 0) == 0
    # Without a length (chunked): refused unread, since only spooling could tell its size.
    status, content, stream = call("/api/v1/firmware-test/", multipart(TENANT_LIMIT + 1)[0], chunked=True)
    assert status == 411 and "Content-Length" in content["detail"]
    assert getattr(stream, "consumed", 0) == 0


@pytest.mark.django_db
def test_octet_stream_bodies_follow_an_explicit_limit_only(small_limits):
    raw = b"\x00" * 50_000
    # The firmware viewset lets a raw body through (its parsers then decline it: 415, not 413).
    status, _, _ = call("/api/v1/firmware-test/", raw, content_type="application/octet-stream")
    assert status == 415
    # The bare-marked CSV upload keeps the small limit for anything but multipart, as before.
    status, _, stream = call("/upload/csv/", b"\x00" * 2 * REQUEST_LIMIT, content_type="application/octet-stream")
    assert status == 413 and getattr(stream, "consumed", 0) == 0


@pytest.mark.django_db
def test_marked_action_method_of_a_viewset(small_limits):
    body, _ = multipart(50_000)
    status, content, _ = call("/api/v1/marked-action/", body)
    assert status == 201 and content == {"files": 1}
    status, _, stream = call("/api/v1/marked-action/", body, method="PUT")
    assert status == 413 and getattr(stream, "consumed", 0) == 0


def test_accepts_uploads_marks_classes_and_keeps_the_bare_form():
    @accepts_uploads(limit_setting="COT_MAX_FIRMWARE_BYTES")
    class Marked(viewsets.ViewSet):
        pass

    @accepts_uploads
    class Bare(viewsets.ViewSet):
        pass

    assert Marked.upload_limit_setting == "COT_MAX_FIRMWARE_BYTES"  # type: ignore[attr-defined]
    assert Bare.upload_limit_setting == "COT_MAX_UPLOAD_BYTES"  # type: ignore[attr-defined]
