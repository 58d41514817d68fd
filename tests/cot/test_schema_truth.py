"""The OpenAPI schema tells the truth about what the server answers."""

from typing import Any

import pytest

from cot.api.schema import CachedSchemaView
from tests.factories import api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(monkeypatch: Any) -> dict[str, Any]:
    monkeypatch.setattr(CachedSchemaView, "_schema", None)
    response = api_client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_rights_list_is_a_plain_list(schema: dict[str, Any], acme: Any, acme_admin: Any) -> None:
    from tests.factories import make_group

    answer = schema["paths"]["/api/v1/device-groups/{id}/rights/"]["get"]["responses"]["200"]
    assert answer["content"]["application/json"]["schema"]["type"] == "array"
    group = make_group(acme)
    assert isinstance(api_client(acme_admin).get(f"/api/v1/device-groups/{group.pk}/rights/").json(), list)


def test_a_grants_engineer_is_null_until_opened(schema: dict[str, Any]) -> None:
    assert schema["components"]["schemas"]["SupportGrant"]["properties"]["bound_engineer"]["nullable"] is True


def test_every_operation_documents_its_refusals(schema: dict[str, Any]) -> None:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answers = set(operation["responses"])
            assert {"401", "403", "406", "429"} <= answers, (path, method)
            takes_input = operation.get("parameters") or "requestBody" in operation or "{" in path
            assert ("400" in answers) == bool(takes_input), (path, method)
            if "{" in path:
                assert "404" in answers, (path, method)
            if method in ("post", "put", "patch"):
                assert {"409", "413", "415"} <= answers, (path, method)


def test_request_bodies_refuse_unknown_fields(schema: dict[str, Any]) -> None:
    requests = {name: body for name, body in schema["components"]["schemas"].items() if name.endswith("Request")}
    assert requests
    for name, body in requests.items():
        assert body.get("additionalProperties") is False, name


def test_the_csv_upload_answers_what_it_created_unpaginated(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/v1/registrations/csv/"]["post"]
    created = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert created["type"] == "array"
    assert not [p for p in operation.get("parameters", []) if p["name"] in ("cursor", "page_size", "status")]


def test_deleting_a_user_is_described_as_deactivation(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/v1/users/{id}/"]["delete"]
    assert "Deactivate" in operation["summary"] and "never deleted" in operation["description"]
