"""Extra sections of the device page, registered by the apps above ``devices``.

``devices`` never imports an app above it (``lint-imports`` says so), yet a higher app
has things to say about a device (``firmware``: the device's firmware history). It
registers a ``DeviceSection`` here when its cockpit package is imported (admin
autodiscovery), as apps register notices with the site. The device page renders every
registered section below its own panels, in ``order``, each from its own template and
the context its ``context`` callable returns for the request and the device.

The device page has already looked the device up through the access layer (404 out of
reach) before any section is asked; each section still reads its own rows through the
access layer (``Model.objects.restrict``), as everything else does. A section that
returns ``None`` is left out for that caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from devices.models import Device

SectionContext = Callable[[HttpRequest, Device], dict[str, Any] | None]


@dataclass(frozen=True)
class DeviceSection:
    """One extra panel of the device page: an id (``device-<key>`` in the page), a title, a template."""

    key: str
    title: str
    template: str
    context: SectionContext
    order: int = 100


_SECTIONS: dict[str, DeviceSection] = {}


def register_device_section(section: DeviceSection) -> None:
    """Add ``section`` to every device page; registering the same section again is harmless."""
    known = _SECTIONS.get(section.key)
    if known is not None and known != section:
        raise ImproperlyConfigured(f"A different device page section {section.key!r} is registered already.")
    _SECTIONS[section.key] = section


def registered_sections() -> list[DeviceSection]:
    """The registered sections, in page order."""
    return sorted(_SECTIONS.values(), key=lambda section: (section.order, section.key))


def device_sections(request: HttpRequest, device: Device) -> list[dict[str, Any]]:
    """What the device page renders for ``device``: each section's key, title, template and context."""
    rendered = []
    for section in registered_sections():
        context = section.context(request, device)
        if context is None:
            continue
        rendered.append({"key": section.key, "title": section.title, "template": section.template, "context": context})
    return rendered
