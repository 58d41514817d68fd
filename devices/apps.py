"""Device registry app."""

from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"

    def ready(self) -> None:
        from devices.access import register_rules

        register_rules()
        from devices.api.routes import register_routes

        register_routes()
        from devices.isolation import register_checks

        register_checks()
        from auditlog.registry import auditlog

        from devices import startup_checks  # noqa: F401  (registers the permission check)
        from devices.models import Device, DeviceGroup, DeviceType

        auditlog.register(DeviceGroup, include_fields=["name", "description", "tenant", "parent"])
        auditlog.register(DeviceType, include_fields=["manufacturer", "model", "certified", "certification_notes"])
        # State the device reports (last seen, location, firmware) changes by set-based
        # updates and is not an audit event; what people change about a device is.
        auditlog.register(
            Device,
            include_fields=["external_id", "name", "type", "group", "status", "attributes", "certificate_fingerprint"],
        )
