"""``manage.py bootstrap_demo`` (the demo data of ``make run``) creates its tenants once and says how to log in."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from cot.demo.management.commands.bootstrap_demo import (
    DEMO_FIRMWARE_VERSION,
    DEMO_GROUPS,
    DEMO_ROLLOUT,
    DEMO_UPDATE_VERSION,
    DEMO_USERS,
    SIMULATED_DEVICES,
)
from devices.models import Device, DeviceGroup, DeviceRegistration, DeviceType
from firmware import signing
from firmware.models import FirmwareImage, Rollout, RolloutWave
from firmware.services import do_plan_rollout
from firmware.services.rollouts import run_planning
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
    # Signed releases, and the private key that signed them, readable by its owner alone.
    image, update = FirmwareImage.objects.filter(tenant=demo).order_by("security_version")
    assert (image.version, update.version) == (DEMO_FIRMWARE_VERSION, DEMO_UPDATE_VERSION)
    assert update.security_version > image.security_version
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for release in (image, update):
        assert release.status == FirmwareImage.Status.RELEASED and release.signed_by is not None
        assert signing.key_id(signing.public_key_of(key_file.read_bytes())) == release.signed_by.key_id
    # A draft rollout of the update to the simulated sensors: one canary, then the rest, on their own.
    (rollout,) = Rollout.objects.filter(tenant=demo)
    assert (rollout.name, rollout.status, rollout.image_id) == (DEMO_ROLLOUT, Rollout.Status.DRAFT, update.pk)
    waves = list(RolloutWave.objects.filter(rollout=rollout).order_by("index"))
    assert [(w.count, w.auto_advance) for w in waves] == [(1, True), (None, True)]
    assert all(0 < w.soak_seconds <= 60 for w in waves)
    assert DEMO_ROLLOUT in out.getvalue()


def test_the_demo_rollout_plans_over_the_simulated_sensors(tmp_path: Path) -> None:
    call_command("bootstrap_demo", firmware_key=tmp_path / "demo-key.pem", stdout=StringIO())
    demo = Tenant.objects.get(slug="demo")
    sensor = DeviceType.objects.get(tenant=demo, model="Simulated sensor")
    Device.objects.bulk_create(  # what the simulator's registrations become
        Device(tenant=demo, external_id=f"SIM-{n:04d}", name=f"SIM-{n:04d}", type=sensor, status=Device.Status.ACTIVE)
        for n in range(1, SIMULATED_DEVICES + 1)
    )
    admin = User.objects.get(email=DEMO_USERS[0][0])
    rollout = do_plan_rollout(Rollout.objects.get(tenant=demo), actor=admin)
    planned = run_planning(rollout.pk)
    assert planned is not None and planned.status == Rollout.Status.READY, planned and planned.status_reason
    waves = RolloutWave.objects.filter(rollout=rollout).order_by("index")
    assert [w.planned for w in waves] == [1, SIMULATED_DEVICES - 1]


def test_an_existing_demo_gets_the_update_once_if_its_key_is_at_hand(tmp_path: Path) -> None:
    key_file = tmp_path / "demo-key.pem"
    call_command("bootstrap_demo", firmware_key=key_file, stdout=StringIO())
    demo = Tenant.objects.get(slug="demo")
    # A demo bootstrapped before the update was part of it.
    Rollout.objects.filter(tenant=demo).delete()
    FirmwareImage.objects.filter(tenant=demo, version=DEMO_UPDATE_VERSION).delete()
    call_command("bootstrap_demo", firmware_key=tmp_path / "elsewhere.pem", stdout=StringIO())  # no key: unchanged
    assert not Rollout.objects.filter(tenant=demo).exists()
    call_command("bootstrap_demo", firmware_key=key_file, stdout=StringIO())
    call_command("bootstrap_demo", firmware_key=key_file, stdout=StringIO())
    assert Rollout.objects.get(tenant=demo).image.version == DEMO_UPDATE_VERSION
    assert FirmwareImage.objects.filter(tenant=demo).count() == 2
