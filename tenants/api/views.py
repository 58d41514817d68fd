"""API endpoints for the caller, users, roles and API tokens."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cot.api.views import CotAPIView, ModelViewSet, ReadCreateViewSet
from tenants import services, two_factor
from tenants.api.serializers import ApiTokenSerializer, MeSerializer, RoleSerializer, UserSerializer
from tenants.models import Action, ApiToken, Role, User


class MeView(CotAPIView):
    """The authenticated caller: user, tenant, role and the token in use."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user, context={"request": request}).data)


class UserViewSet(ModelViewSet):
    """Users of the caller's tenant. Administrators manage them; others see only themselves.

    ``DELETE`` deactivates: users are never removed, so the audit trail keeps its actors.
    """

    queryset = User.objects.select_related("role").annotate(has_two_factor=two_factor.second_factor_exists())
    serializer_class = UserSerializer
    filterset_fields = ["role", "is_active"]

    @extend_schema(
        summary="Deactivate a user",
        description="Users are never deleted (the audit trail keeps its actors): DELETE deactivates the user, "
        "ends their sessions and revokes their API tokens. Reactivate with PATCH is_active=true; they log in again.",
        responses={204: None},
    )
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance: User) -> None:
        services.do_update_user(instance, {"is_active": False}, actor=self.actor)


class RoleViewSet(ModelViewSet):
    """Built-in and custom roles of the caller's tenant; only custom roles change."""

    queryset = Role.objects.all()
    serializer_class = RoleSerializer
    filterset_fields = ["kind"]

    def perform_destroy(self, instance: Role) -> None:
        services.do_delete_role(instance, actor=self.actor)


class ApiTokenViewSet(ReadCreateViewSet):
    """The caller's API tokens (administrators: all of the tenant's). Revoke with ``/revoke/``."""

    queryset = ApiToken.objects.select_related("user").all()
    serializer_class = ApiTokenSerializer
    filterset_fields = ["scope"]

    @extend_schema(request=None, responses=ApiTokenSerializer)
    @action(detail=True, methods=["post"], access_action=Action.DELETE)
    def revoke(self, request: Request, pk: Any = None) -> Response:
        token = services.do_revoke_api_token(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(token).data)
