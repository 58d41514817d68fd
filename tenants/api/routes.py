"""The tenants app's ``/api/v1/`` endpoints, registered from ``TenantsConfig.ready()``."""

from django.urls import path

from cot.api.routes import register, register_path
from tenants.api.support import SupportGrantViewSet
from tenants.api.views import ApiTokenViewSet, MeView, RoleViewSet, UserViewSet


def register_routes() -> None:
    """Users, roles, API tokens, support grants and ``me/``."""
    register_path(path("me/", MeView.as_view(), name="me"))
    register("users", UserViewSet, basename="user")
    register("roles", RoleViewSet, basename="role")
    register("tokens", ApiTokenViewSet, basename="apitoken")
    register("support-grants", SupportGrantViewSet, basename="supportgrant")
