"""API endpoints for device groups."""

from typing import Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cot.api.views import ModelViewSet
from devices import services
from devices.api.serializers import DeviceGroupRightsSerializer, DeviceGroupSerializer
from devices.models import DeviceGroup
from tenants.access import require_caller


class DeviceGroupViewSet(ModelViewSet):
    """Device groups the caller holds rights on (administrators: all of the tenant's).

    ``/rights/`` lists who holds which rights on a group and, for administrators,
    replaces one user's or role's rights in one step.
    """

    queryset = DeviceGroup.objects.all()
    serializer_class = DeviceGroupSerializer
    search_fields = ["name"]

    def perform_destroy(self, instance: DeviceGroup) -> None:
        services.do_delete_device_group(instance, actor=self.actor)

    @extend_schema(responses=DeviceGroupRightsSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="rights", serializer_class=DeviceGroupRightsSerializer)
    def rights(self, request: Request, pk: Any = None) -> Response:
        group = self.get_object()
        if not require_caller(request.user).is_admin:
            raise PermissionDenied("Only administrators see who holds rights.")
        return Response(services.rights_on(group))

    @extend_schema(request=DeviceGroupRightsSerializer, responses=DeviceGroupRightsSerializer)
    @rights.mapping.put
    def set_rights(self, request: Request, pk: Any = None) -> Response:
        group = self.get_object()
        serializer = DeviceGroupRightsSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        rights = services.do_set_device_group_rights(group, actor=self.actor, **serializer.validated_data)
        data = serializer.validated_data
        return Response(
            {
                "user": getattr(data.get("user"), "pk", None),
                "role": getattr(data.get("role"), "pk", None),
                "rights": rights,
            }
        )
