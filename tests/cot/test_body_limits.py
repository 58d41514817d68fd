"""Oversize bodies get 413 on every route, before anything reads them (cot.body_limits)."""

import io
import json
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.test.client import ClientHandler

from devices.models import DeviceGroup, DeviceRegistration
from tests.factories import make_token, verified_client

pytestmark = pytest.mark.django_db

LIMIT = 1000


@pytest.fixture(autouse=True)
def small_limits(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT
    settings.COT_MAX_UPLOAD_BYTES = 4 * LIMIT


class CountingStream(io.BytesIO):
    """A request body that remembers how much of it was read."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed = getattr(self, "consumed", 0) + len(data)
        return data


def call(path: str, body: bytes, *, chunked: bool = False, **headers: str) -> tuple[int, dict[str, str], bytes, Any]:
    """POST ``body`` through the whole WSGI stack, as gunicorn would hand it over."""
    environ = RequestFactory().post(path, content_type="application/json", headers=None).environ
    environ.update(headers)
    stream = CountingStream(body)
    environ["wsgi.input"] = stream
    if chunked:
        environ.pop("CONTENT_LENGTH", None)
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    # The test client's handler: the whole middleware stack, without closing the test's database connection.
    response: Any = ClientHandler()(environ)
    content = b"".join(response) if response.streaming else response.content
    return response.status_code, dict(response.headers), content, stream


def test_api_body_over_the_limit_is_refused_unread(acme_admin):
    body = json.dumps({"name": "x" * 2 * LIMIT}).encode()
    status, headers, content, stream = call(
        "/api/v1/device-groups/", body, HTTP_AUTHORIZATION=f"Bearer {make_token(acme_admin)}"
    )
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert json.loads(content)["limit_bytes"] == LIMIT and str(LIMIT) in json.loads(content)["detail"]
    assert getattr(stream, "consumed", 0) == 0  # refused by its length, never read
    assert not DeviceGroup.objects.exists()


def test_chunked_body_is_read_only_up_to_the_limit(acme_admin):
    token = make_token(acme_admin)
    big = json.dumps({"name": "x" * 50 * LIMIT}).encode()
    status, _, _, stream = call("/api/v1/device-groups/", big, chunked=True, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 413
    assert stream.consumed <= LIMIT + 1  # stopped one byte past the limit, not at the end of the body
    small = json.dumps({"name": "Chunked plant"}).encode()
    status, _, content, _ = call("/api/v1/device-groups/", small, chunked=True, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 201, content
    assert DeviceGroup.objects.get().name == "Chunked plant"


def test_device_api_and_cockpit_refuse_too(acme_admin):
    status, _, content, _ = call("/api/device/v1/measurements", b"[" + b" " * 2 * LIMIT + b"]")
    assert status == 413 and json.loads(content)["limit_bytes"] == LIMIT
    status, headers, content, _ = call("/cockpit/login/", b"username=" + b"a" * 2 * LIMIT)
    assert status == 413 and headers["Content-Type"].startswith("text/html")
    assert f"{LIMIT} bytes" in content.decode()


def test_cockpit_uploads_have_their_own_limit(acme, acme_admin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = verified_client(acme_admin)
    url = "/cockpit/devices/deviceregistration/upload/"
    lines = "".join(f"UP-{n:05d},label-token-{n:05d}\n" for n in range(60))  # over the request limit
    fitting = SimpleUploadedFile("devices.csv", f"external_id,registration_token\n{lines}".encode())
    assert client.post(url, {"file": fitting}).status_code == 200
    assert DeviceRegistration.objects.filter(tenant=acme).count() == 60
    huge = SimpleUploadedFile("devices.csv", b"external_id\n" + b"X\n" * 4 * LIMIT)
    assert client.post(url, {"file": huge}).status_code == 413
    assert DeviceRegistration.objects.filter(tenant=acme).count() == 60
    # Other pages keep the small limit for multipart bodies too (the login, for anyone).
    padding = SimpleUploadedFile("padding.bin", b"x" * 2 * LIMIT)
    assert Client().post("/cockpit/login/", {"username": "a@b.test", "file": padding}).status_code == 413
