"""Firmware tests: every test stores images in its own directory; shared scenes of a tenant with a device type.

The cockpit isolation checks here are collected as in ``tests/cockpit``: only those that apply to each admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.models import DeviceType
from devices.services.registry import do_create_device_type
from firmware import signing
from tenants.models import Role
from tenants.services import do_create_support_grant, do_update_tenant_policy
from tests.factories import make_user, verified_client
from tests.firmware.processes import Process


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


@pytest.fixture
def support_client(acme: Any, acme_admin: Any, provider: Any) -> Any:
    """A support engineer's cockpit session inside acme under a *write* grant (firmware stays shut to it)."""
    do_update_tenant_policy(provider, {"session_idle_minutes": 720})
    engineer = make_user(provider, Role.Kind.SUPPORT)
    _, link = do_create_support_grant(duration_hours=24, actor=acme_admin, reason="T-11", scope="write")
    client = verified_client(engineer)
    assert client.post("/support/enter/", {"secret": link}).status_code == 302
    return client


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Worker and simulator processes a test starts (appended here), stopped at its end; an empty queue first."""
    from cot.celery import app

    app.control.purge()  # no message of an earlier test run reaches these workers
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()
