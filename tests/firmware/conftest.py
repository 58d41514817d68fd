"""Firmware tests: every test stores images in its own directory; shared scenes of a tenant with a device type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devices.models import DeviceType
from devices.services.registry import do_create_device_type
from firmware import signing


@pytest.fixture
def sensor(acme: Any) -> DeviceType:
    return do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=acme)


@pytest.fixture
def keypair() -> tuple[bytes, str]:
    """A fresh Ed25519 key: (private PEM, public PEM)."""
    return signing.generate_key()


def stored_files(directory: Path) -> list[Path]:
    """Every file below the storage directory."""
    return sorted(p for p in directory.rglob("*") if p.is_file())
