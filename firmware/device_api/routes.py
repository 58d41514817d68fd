"""The firmware app's device endpoints under ``/api/device/v1/``, registered from ``FirmwareConfig.ready()``."""

from django.urls import path

from devices.device_api import routes
from firmware.device_api import openapi, views


def register_device_routes() -> None:
    """``firmware/next``, ``firmware/status``, ``firmware/keys`` and the image download."""
    routes.register(path("firmware/next", views.next_update, name="device-firmware-next"), openapi.paths)
    routes.register(path("firmware/status", views.report, name="device-firmware-status"))
    routes.register(path("firmware/keys", views.signing_keys, name="device-firmware-keys"))
    routes.register(path("firmware/images/<int:image_id>/download", views.download, name="device-firmware-download"))
