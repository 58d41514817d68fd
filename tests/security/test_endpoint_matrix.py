"""Cross-cutting checks over every API endpoint, so a new endpoint cannot skip the rules."""

from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from cot.api.urls import router
from cot.api.views import CotAPIView, TenantScopedViewSet
from tests.factories import api_client
from tests.support.api_isolation import TenantIsolationChecks
from tests.support.discovery import classes_built_on
from tests.support.group_scope import ApiGroupScopeChecks, group_scoped

pytestmark = pytest.mark.django_db


def _api_patterns(resolver: Any = None, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += _api_patterns(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/"):
            found.append((route, entry.callback))
    return found


def _concrete_url(route: str) -> str:
    return "/" + route.replace("(?P<pk>[0-9]+)", "1").replace("^", "").replace("$", "")


def test_every_api_view_uses_the_access_layer_base():
    for route, callback in _api_patterns():
        view_class = getattr(callback, "cls", None)
        assert view_class is not None, route
        assert issubclass(view_class, TenantScopedViewSet | CotAPIView), f"{route} bypasses the API base classes"


@pytest.mark.parametrize("route", sorted({route for route, _ in _api_patterns() if "(?P<format>" not in route}))
def test_anonymous_is_refused_everywhere(route):
    url = _concrete_url(route)
    for method in ("get", "post", "put", "patch", "delete"):
        response = getattr(api_client(), method)(url)
        assert response.status_code in (401, 405), f"{method.upper()} {url} -> {response.status_code}"


def test_every_model_endpoint_has_an_isolation_test_class():
    covered = {cls.endpoint for cls in classes_built_on(TenantIsolationChecks) if hasattr(cls, "endpoint")}
    registered = {f"/api/v1/{prefix}/" for prefix, _, _ in router.registry}
    # The audit trail has no writes; its isolation is tested in tests/audit/test_audit_api.py.
    assert registered - covered <= {"/api/v1/audit/"}


def group_scoped_endpoints() -> set[str]:
    """Endpoints whose rows a Standard user reaches through device-group grants."""
    viewsets: dict[str, Any] = {f"/api/v1/{prefix}/": view for prefix, view, _ in router.registry}
    return {endpoint for endpoint, view in viewsets.items() if group_scoped(view.queryset.model)}


def test_every_group_scoped_endpoint_has_a_within_tenant_test_class():
    """Granted group 200, another group of the same tenant 404 (``tests/support/group_scope.py``)."""
    covered = {cls.endpoint for cls in classes_built_on(ApiGroupScopeChecks) if hasattr(cls, "endpoint")}
    scoped = group_scoped_endpoints()
    assert "/api/v1/devices/" in scoped  # the discovery itself works
    assert scoped - covered == set(), "group-scoped endpoints without an ApiGroupScopeChecks class"
