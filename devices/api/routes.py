"""The devices app's ``/api/v1/`` endpoints, registered from ``DevicesConfig.ready()``."""

from cot.api.routes import router
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
    router.register("device-groups", DeviceGroupViewSet, basename="devicegroup")
    router.register("device-types", DeviceTypeViewSet, basename="devicetype")
    router.register("devices", DeviceViewSet, basename="device")
    router.register("registrations", DeviceRegistrationViewSet, basename="deviceregistration")
    router.register("measurements", MeasurementViewSet, basename="measurement")
    router.register("events", EventViewSet, basename="event")
    router.register("alarms", AlarmViewSet, basename="alarm")
    router.register("operations", OperationViewSet, basename="operation")
