"""The firmware app's ``/api/v1/`` endpoints, registered from ``FirmwareConfig.ready()``."""

from django.urls import path

from cot.api.routes import register, register_path
from firmware.api.views import FirmwareImageViewSet, FirmwarePolicyView, SigningKeyViewSet


def register_routes() -> None:
    """Images, signing keys and the firmware policy."""
    register("firmware", FirmwareImageViewSet, basename="firmwareimage")
    register("firmware-keys", SigningKeyViewSet, basename="signingkey")
    register_path(path("firmware-policy/", FirmwarePolicyView.as_view(), name="firmware-policy"))
