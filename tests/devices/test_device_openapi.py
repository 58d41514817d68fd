"""The device API has its own OpenAPI document, naming exactly the endpoints the device URLconf serves."""

import re

import pytest
from django.urls import get_resolver

from tests.factories import api_client

pytestmark = pytest.mark.django_db


def _served_paths() -> set[str]:
    paths = set()
    for pattern in get_resolver("devices.device_api.urls").url_patterns:
        route = re.sub(r"<int:(\w+)>", r"{\1}", str(pattern.pattern))
        if route != "schema":
            paths.add("/" + route)
    return paths


def test_the_document_is_public_and_names_every_device_endpoint() -> None:
    response = api_client().get("/api/device/v1/schema")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/api/device/v1"}]
    assert set(document["paths"]) == _served_paths()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert {"200", "201"} & set(operation["responses"]), (path, method)
            assert "429" in operation["responses"], (path, method)
    # Registration needs no credential; everything else does.
    assert document["paths"]["/register"]["post"]["security"] == []
    assert document["security"] == [{"deviceCredential": []}]


def test_request_bodies_refuse_unknown_fields_as_the_api_does() -> None:
    schemas = api_client().get("/api/device/v1/schema").json()["components"]["schemas"]
    for name in ("Measurement", "Event", "Alarm", "Location"):
        assert schemas[name]["additionalProperties"] is False, name
