"""The tenants app's ``/api/v1/`` endpoints, registered from ``TenantsConfig.ready()``."""

from django.urls import path

from cot.api.routes import register_path, router
from tenants.api.support import SupportGrantViewSet
from tenants.api.views import ApiTokenViewSet, MeView, RoleViewSet, UserViewSet


def register_routes() -> None:
    """Users, roles, API tokens, support grants and ``me/``."""
    register_path(path("me/", MeView.as_view(), name="me"))
    router.register("users", UserViewSet, basename="user")
    router.register("roles", RoleViewSet, basename="role")
    router.register("tokens", ApiTokenViewSet, basename="apitoken")
    router.register("support-grants", SupportGrantViewSet, basename="supportgrant")
