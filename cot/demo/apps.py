"""An app only so that Django finds ``manage.py bootstrap_demo``; it has no models."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "cot.demo"
    label = "demo"
