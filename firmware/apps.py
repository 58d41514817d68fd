"""Firmware: the signed image repository (rollouts and the device update protocol follow)."""

from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"

    def ready(self) -> None:
        from firmware.access import register_rules

        register_rules()
        from firmware.api.routes import register_routes

        register_routes()
        from firmware.device_api.routes import register_device_routes

        register_device_routes()
