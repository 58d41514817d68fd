"""Reusable tenant-isolation checks, inherited by every model's API tests (NetBox style).

A subclass names its endpoint, how to make a row in a tenant, and a valid create
payload; it inherits tests that another tenant's row answers 404 on detail, update and
delete, is absent from the list, and cannot be used as a foreign-key value.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from tests.factories import api_client, ids, make_tenant, make_user


@pytest.mark.django_db(databases=["default", "telemetry"])
class TenantIsolationChecks:
    """Mix into a test class; set the attributes below."""

    endpoint: ClassVar[str]  # e.g. "/api/v1/device-groups/"
    #: payload fields that name a related row, with a factory making one in a given tenant
    foreign_keys: ClassVar[dict[str, Any]] = {}

    def make_object(self, tenant: Any) -> Any:
        raise NotImplementedError

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        raise NotImplementedError

    def update_payload(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def two_tenants(self, db: Any) -> dict[str, Any]:
        home, other = make_tenant(), make_tenant()
        admin = make_user(home, "administrator")
        return {"home": home, "other": other, "client": api_client(admin), "foreign": self.make_object(other)}

    def detail(self, obj: Any) -> str:
        return f"{self.endpoint}{obj.pk}/"

    def test_foreign_object_is_absent_from_list(self, two_tenants: dict[str, Any]) -> None:
        response = two_tenants["client"].get(self.endpoint)
        assert response.status_code == 200
        assert two_tenants["foreign"].pk not in ids(response)

    def test_foreign_object_detail_is_404(self, two_tenants: dict[str, Any]) -> None:
        assert two_tenants["client"].get(self.detail(two_tenants["foreign"])).status_code == 404

    def test_foreign_object_update_is_404(self, two_tenants: dict[str, Any]) -> None:
        url, client = self.detail(two_tenants["foreign"]), two_tenants["client"]
        assert client.patch(url, self.update_payload(), format="json").status_code in (404, 405)
        assert client.put(url, self.update_payload(), format="json").status_code in (404, 405)

    def test_foreign_object_delete_is_404(self, two_tenants: dict[str, Any]) -> None:
        response = two_tenants["client"].delete(self.detail(two_tenants["foreign"]))
        assert response.status_code in (404, 405)
        assert type(two_tenants["foreign"]).objects.filter(pk=two_tenants["foreign"].pk).exists()

    def test_foreign_key_to_other_tenant_is_rejected(self, two_tenants: dict[str, Any]) -> None:
        for field, factory in self.foreign_keys.items():
            payload = {**self.create_payload(two_tenants["home"]), field: factory(two_tenants["other"]).pk}
            response = two_tenants["client"].post(self.endpoint, payload, format="json")
            assert response.status_code == 400, response.content
            assert field in response.json()

    def test_anonymous_is_401(self, two_tenants: dict[str, Any]) -> None:
        assert api_client().get(self.endpoint).status_code == 401
