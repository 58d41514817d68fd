"""Device registry app."""

from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from devices.models import DeviceGroup

        auditlog.register(DeviceGroup, include_fields=["name", "description", "tenant"])
