"""``manage.py bootstrap_demo`` (the demo data of ``make run``) creates its tenants once and says how to log in."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from cot.demo.management.commands.bootstrap_demo import DEMO_GROUPS, DEMO_USERS, SIMULATED_DEVICES
from devices.models import DeviceGroup, DeviceRegistration
from firmware import signing
from firmware.models import FirmwareImage
from tenants.models import Tenant, User

pytestmark = pytest.mark.django_db(databases=["default", "telemetry"])


def test_bootstrap_demo_is_idempotent_and_prints_the_login(tmp_path: Path) -> None:
    out = StringIO()
    key_file = tmp_path / "demo-key.pem"
    call_command("bootstrap_demo", firmware_key=key_file, stdout=out)
    call_command("bootstrap_demo", firmware_key=key_file, stdout=StringIO())
    demo = Tenant.objects.get(slug="demo")
    assert Tenant.objects.filter(kind=Tenant.Kind.PROVIDER).count() == 1
    assert set(User.objects.filter(tenant=demo).values_list("email", flat=True)) == {e for e, _ in DEMO_USERS}
    assert set(DeviceGroup.objects.filter(tenant=demo).values_list("name", flat=True)) == set(DEMO_GROUPS)
    assert DeviceRegistration.objects.filter(tenant=demo).count() == SIMULATED_DEVICES
    assert DEMO_USERS[0][0] in out.getvalue()
    # A signed release, and the private key that signed it, readable by its owner alone.
    (image,) = FirmwareImage.objects.filter(tenant=demo)
    assert image.status == FirmwareImage.Status.RELEASED and image.signed_by is not None
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert signing.key_id(signing.public_key_of(key_file.read_bytes())) == image.signed_by.key_id
