"""App config of the throwaway app."""

from django.apps import AppConfig


class ThrowawayConfig(AppConfig):
    """Installed only by ``tests.support.throwaway_settings``."""

    name = "tests.support.throwaway"
    label = "throwaway"
