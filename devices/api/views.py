"""API endpoints for device groups."""

from typing import Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cot.api.pagination import IdCursorPagination
from cot.api.views import ModelViewSet, ReadCreateViewSet, TenantScopedViewSet
from devices import services
from devices.api.serializers import (
    AlarmSerializer,
    AlarmStatusSerializer,
    BulkDevicesSerializer,
    DeviceGroupRightsSerializer,
    DeviceGroupSerializer,
    DeviceRegistrationSerializer,
    DeviceSerializer,
    DeviceTypeSerializer,
    EventSerializer,
    MeasurementSerializer,
    OperationSerializer,
    RegistrationCsvSerializer,
    with_token,
)
from devices.filters import AlarmFilter, DeviceFilter, EventFilter, MeasurementFilter, OperationFilter
from devices.models import Alarm, Device, DeviceGroup, DeviceRegistration, DeviceType, Event, Measurement, Operation
from devices.services import registration, registry
from tenants.access import manages_rights
from tenants.models import Action


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
    @action(
        detail=True,
        methods=["get"],
        url_path="rights",
        serializer_class=DeviceGroupRightsSerializer,
        pagination_class=None,  # every holder at once: a group has few
    )
    def rights(self, request: Request, pk: Any = None) -> Response:
        group = self.get_object()
        if not manages_rights(request.user):
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


class DeviceTypeViewSet(ReadCreateViewSet):
    """Device types of the caller's tenant; administrators add them."""

    queryset = DeviceType.objects.all()
    serializer_class = DeviceTypeSerializer
    filterset_fields = ["certified", "manufacturer"]


class DeviceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, TenantScopedViewSet):
    """Devices in the groups the caller holds rights on. Devices are created by registration.

    Bulk actions (``/bulk/move/``, ``/bulk/block/``, ``/bulk/decommission/``) are all or none.
    """

    queryset = Device.objects.select_related("type").all()
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter

    def _bulk(self, request: Request) -> dict[str, Any]:
        serializer = BulkDevicesSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @extend_schema(request=BulkDevicesSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="bulk/move", access_action=Action.CHANGE)
    def bulk_move(self, request: Request) -> Response:
        data = self._bulk(request)
        return Response({"moved": registry.do_move_devices(data["devices"], data.get("group"), actor=self.actor)})

    @extend_schema(request=BulkDevicesSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="bulk/block", access_action=Action.CHANGE)
    def bulk_block(self, request: Request) -> Response:
        return Response({"blocked": registry.do_block_devices(self._bulk(request)["devices"], actor=self.actor)})

    @extend_schema(request=BulkDevicesSerializer, responses={200: OpenApiTypes.OBJECT})
    @action(detail=False, methods=["post"], url_path="bulk/decommission", access_action=Action.DELETE)
    def bulk_decommission(self, request: Request) -> Response:
        data = self._bulk(request)
        ids = registry.do_decommission_devices(data["devices"], purge=data["purge"], actor=self.actor)
        return Response({"decommissioned": ids})

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["post"], url_path="credential/rotate", access_action=Action.CHANGE)
    def rotate_credential(self, request: Request, pk: Any = None) -> Response:
        """A new credential for the device, shown once (the old one stops working)."""
        device = self.get_object()
        return Response(
            {"device_id": device.pk, "credential": registry.do_rotate_device_credential(device, actor=self.actor)}
        )

    @extend_schema(request=None, responses=DeviceSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def unblock(self, request: Request, pk: Any = None) -> Response:
        """Let a blocked device talk again."""
        return Response(self.get_serializer(registry.do_unblock_device(self.get_object(), actor=self.actor)).data)

    @extend_schema(request=None, responses=DeviceSerializer)
    @action(detail=True, methods=["post"], url_path="credential/revoke", access_action=Action.CHANGE)
    def revoke_credential(self, request: Request, pk: Any = None) -> Response:
        device = registry.do_revoke_device_credential(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(device).data)


class DeviceRegistrationViewSet(ReadCreateViewSet):
    """Expected devices (administrators). Accept one with ``/accept/``, many from CSV with ``/csv/``.

    Creating answers with each registration's token (the one sent or a generated one),
    this once.
    """

    queryset = DeviceRegistration.objects.all()
    serializer_class = DeviceRegistrationSerializer
    filterset_fields = ["status", "external_id"]

    @extend_schema(request=None, responses=DeviceRegistrationSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def accept(self, request: Request, pk: Any = None) -> Response:
        accepted = registration.do_accept_registration(self.get_object(), actor=self.actor)
        return Response(self.get_serializer(accepted).data)

    @extend_schema(request=RegistrationCsvSerializer, responses={201: DeviceRegistrationSerializer(many=True)})
    @action(detail=False, methods=["post"], pagination_class=None, filter_backends=[])  # answers what it created
    def csv(self, request: Request) -> Response:
        serializer = RegistrationCsvSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lines = serializer.validated_data["csv"].splitlines()
        issued = registration.do_bulk_register(lines, actor=self.actor, source="csv")
        created = [with_token(one) for one in issued]
        return Response(self.get_serializer(created, many=True).data, status=201)


class OperationViewSet(ReadCreateViewSet):
    """Operations on devices the caller may see; creating one needs ``change`` on the device."""

    queryset = Operation.objects.all()
    serializer_class = OperationSerializer
    filterset_class = OperationFilter

    @extend_schema(request=None, responses=OperationSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def cancel(self, request: Request, pk: Any = None) -> Response:
        return Response(self.get_serializer(registry.do_cancel_operation(self.get_object(), actor=self.actor)).data)


class TimeCursorPagination(IdCursorPagination):
    """Payload lists page newest first by time: keyset pagination on the time index."""

    ordering = "-time"


class MeasurementViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """Measurements of devices the caller may see, newest first."""

    queryset = Measurement.objects.all()
    serializer_class = MeasurementSerializer
    filterset_class = MeasurementFilter
    pagination_class = TimeCursorPagination


class EventViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """Events of devices the caller may see, newest first."""

    queryset = Event.objects.all()
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = TimeCursorPagination


class AlarmViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Alarms of devices the caller may see. ``POST /{id}/status/`` acknowledges or clears."""

    queryset = Alarm.objects.all()
    serializer_class = AlarmSerializer
    filterset_class = AlarmFilter

    @extend_schema(request=AlarmStatusSerializer, responses=AlarmSerializer)
    @action(detail=True, methods=["post"], access_action=Action.CHANGE)
    def status(self, request: Request, pk: Any = None) -> Response:
        serializer = AlarmStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alarm = self.get_object()  # 404 alike for missing, out of reach, or not changeable
        alarm = registry.do_set_alarm_status(alarm.pk, serializer.validated_data["status"], actor=self.actor)
        return Response(AlarmSerializer(alarm).data)
