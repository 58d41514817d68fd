"""The devices app's ``/api/v1/`` endpoints, registered from ``DevicesConfig.ready()``."""

from cot.api.routes import register
from devices.api.views import (
    AlarmViewSet,
    DeviceGroupViewSet,
    DeviceRegistrationViewSet,
    DeviceTypeViewSet,
    DeviceViewSet,
    EventViewSet,
    MeasurementViewSet,
    OperationViewSet,
)


def register_routes() -> None:
    """The device registry and the device payload (read from the telemetry database)."""
    register("device-groups", DeviceGroupViewSet, basename="devicegroup")
    register("device-types", DeviceTypeViewSet, basename="devicetype")
    register("devices", DeviceViewSet, basename="device")
    register("registrations", DeviceRegistrationViewSet, basename="deviceregistration")
    register("measurements", MeasurementViewSet, basename="measurement")
    register("events", EventViewSet, basename="event")
    register("alarms", AlarmViewSet, basename="alarm")
    register("operations", OperationViewSet, basename="operation")
