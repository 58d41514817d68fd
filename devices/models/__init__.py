"""Device models: the registry (``default`` database) and payload data (``telemetry`` database)."""

from devices.models.registry import (
    Device,
    DeviceGroup,
    DeviceGroupRolePermission,
    DeviceGroupUserPermission,
    DeviceRegistration,
    DeviceType,
    Operation,
    PayloadPurge,
)
from devices.models.telemetry import Alarm, Event, Measurement, OperationResult

__all__ = [
    "Alarm",
    "Device",
    "DeviceGroup",
    "DeviceGroupRolePermission",
    "DeviceGroupUserPermission",
    "DeviceRegistration",
    "DeviceType",
    "Event",
    "Measurement",
    "Operation",
    "OperationResult",
    "PayloadPurge",
]
