"""Reusable tenant-isolation checks, inherited by every model's API tests (NetBox style).

A subclass names its endpoint, how to make a row in a tenant, and a valid create
payload; it inherits tests that another tenant's row answers 404 on detail, update and
delete, is absent from the list, cannot be used as a foreign-key value, and that every
filter on a related row answers another tenant's id exactly as an id that exists nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from django.db.models import Max

from cot.api.filters import RELATION_FILTERS, ScopedFilterBackend
from cot.api.urls import router
from cot.api.views import TenantScopedViewSet
from devices.models import Device, DeviceGroup, DeviceType
from devices.services.registry import do_create_device_type
from tenants.models import Role, User
from tenants.services import builtin_role
from tests.factories import api_client, ids, make_device, make_group, make_tenant, make_user

# A row of each model a filter may name, made in a given tenant. A filter on a model
# missing here fails the check below, so a new filter cannot skip it.
RELATED_ROWS: dict[Any, Callable[[Any], Any]] = {
    DeviceGroup: make_group,
    DeviceType: lambda tenant: do_create_device_type(manufacturer="X", model="Y", actor=None, tenant=tenant),
    Device: lambda tenant: make_device(tenant)[0],
    Role: lambda tenant: builtin_role(tenant, Role.Kind.STANDARD),
    User: lambda tenant: make_user(tenant, Role.Kind.STANDARD),
}
# Filters on ids kept without a foreign key (payload rows live in another database).
ID_FILTERS = {"device_id": Device}


def relation_filters(endpoint: str) -> dict[str, Any]:
    """The query parameters of ``endpoint``'s list that name a related row, with the row's model."""
    (viewset,) = [view for prefix, view, _ in router.registry if f"/api/v1/{prefix}/" == endpoint]
    assert issubclass(viewset, TenantScopedViewSet)
    filterset = ScopedFilterBackend().get_filterset_class(viewset(), viewset.queryset)
    if filterset is None:
        return {}
    found = {}
    for name, spec in filterset.base_filters.items():
        if isinstance(spec, RELATION_FILTERS):
            found[name] = filterset.relation_model(name)
        elif spec.field_name in ID_FILTERS:
            found[name] = ID_FILTERS[spec.field_name]
    return found


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

    def test_filters_answer_foreign_and_missing_ids_alike(self, two_tenants: dict[str, Any]) -> None:
        client = two_tenants["client"]
        for param, model in relation_filters(self.endpoint).items():
            assert model in RELATED_ROWS, f"add a factory for {model.__name__} to test ?{param}="
            foreign = RELATED_ROWS[model](two_tenants["other"])
            missing = (model._default_manager.aggregate(top=Max("pk"))["top"] or 0) + 1000
            answers = [client.get(self.endpoint, {param: pk}) for pk in (foreign.pk, missing)]
            assert answers[0].status_code == answers[1].status_code, param
            assert answers[0].json() == answers[1].json(), param

    def test_anonymous_is_401(self, two_tenants: dict[str, Any]) -> None:
        assert api_client().get(self.endpoint).status_code == 401
