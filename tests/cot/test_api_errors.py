"""Every answer under /api/ is JSON, errors included (unknown URLs, errors outside the API views)."""

from typing import Any

import pytest
from django.test import Client

from tests.factories import api_client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v2/devices/", "/api/", "/api/v1/devices/1/no-such-action/"])
def test_unknown_api_urls_are_json_404(settings: Any, acme_admin: Any, path: str, debug: bool) -> None:
    settings.DEBUG = debug
    response = api_client(acme_admin).get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert path in response.json()["detail"]


def test_a_missing_slash_gets_a_hint(acme_admin: Any) -> None:
    response = api_client(acme_admin).get("/api/v1/devices")
    assert response.status_code == 404
    assert "/api/v1/devices/" in response.json()["detail"]


def test_an_error_outside_drf_is_json_under_the_api_and_a_page_elsewhere(monkeypatch: Any, acme_admin: Any) -> None:
    from tenants.api.views import MeView

    def broken(self: Any, request: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(MeView, "get", broken)
    client = api_client(acme_admin)
    client.raise_request_exception = False
    response = client.get("/api/v1/me/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json" and "detail" in response.json()
    page = Client(raise_request_exception=False).get("/cockpit/no-such-page/")
    assert page.status_code in (302, 404) and not page["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/alarms/not-a-number/status/"),
        ("get", "/api/v1/devices/1e3/"),
        ("delete", "/api/v1/device-groups/-1/"),
        ("post", "/api/v1/operations/%F0%9F%92%A5/cancel/"),
    ],
)
def test_non_numeric_ids_are_json_404(acme_admin: Any, method: str, path: str) -> None:
    response = getattr(api_client(acme_admin), method)(path, {"status": "CLEARED"}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "BREW"])
def test_a_method_that_names_no_action_is_405_before_any_rule(acme_admin: Any, method: str) -> None:
    from rest_framework.exceptions import MethodNotAllowed
    from rest_framework.test import APIRequestFactory

    from cot.api.actions import access_action
    from devices.api.views import DeviceViewSet

    with pytest.raises(MethodNotAllowed):
        access_action(DeviceViewSet(), APIRequestFactory().generic(method, "/api/v1/devices/"))
    response = api_client(acme_admin).generic(method, "/api/v1/devices/")
    assert response.status_code == 405
    assert method in response.json()["detail"]
