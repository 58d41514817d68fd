"""Firmware images and rollouts (built in a later issue)."""

from django.apps import AppConfig


class FirmwareConfig(AppConfig):
    name = "firmware"
