"""The firmware app's ``/api/v1/`` endpoints, registered from ``FirmwareConfig.ready()``."""

from django.urls import path

from cot.api.routes import register, register_path
from firmware.api.views import FirmwareImageViewSet, FirmwarePolicyView, RolloutViewSet, SigningKeyViewSet


def register_routes() -> None:
    """Images, signing keys, the firmware policy and rollouts."""
    register("firmware", FirmwareImageViewSet, basename="firmwareimage")
    register("firmware-keys", SigningKeyViewSet, basename="signingkey")
    register("rollouts", RolloutViewSet, basename="rollout")
    register_path(path("firmware-policy/", FirmwarePolicyView.as_view(), name="firmware-policy"))
