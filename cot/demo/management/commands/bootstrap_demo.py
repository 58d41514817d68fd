"""``manage.py bootstrap_demo``: the demo tenants and users ``make run`` starts with.

Idempotent: a second run keeps what exists and only prints the login instructions. The
demo tenant gets a signing key and a signed, released firmware image for the simulated
sensors; the key's private half is written to ``var/demo-firmware-key.pem`` (mode 0600)
so that a demo user can sign further images with ``manage.py sign_firmware``. A second
signed, released image (a higher version and security version) and a draft rollout of it
to the simulated sensors (one canary, then the rest) are ready to be planned and started,
so that the five simulated devices of ``make run`` can be watched taking an update
(docs/rollouts.md, "Try it with the demo").
"""

import hashlib
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import CommandParser
from django.db import transaction

from audit.context import audit_context
from cot.database.commands import CrossTenantCommand
from devices.models import DeviceType
from devices.services import do_create_device_group, do_set_device_group_rights
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_device_type
from firmware import selectors, signing
from firmware.models import FirmwareImage, SigningKey
from firmware.services import (
    do_add_signing_key,
    do_create_rollout,
    do_release_firmware_image,
    do_upload_firmware_image,
)
from tenants.models import Role, Tenant
from tenants.services import builtin_role, do_create_tenant, do_create_user, do_update_tenant_policy

DEMO_PASSWORD = "demo-cockpit-2026!"  # noqa: S105 (published demo credential for local runs only)
# The simulated devices' registration token (the Procfile passes it); as public as the password.
DEMO_REGISTRATION_TOKEN = "demo-simulator-registration"  # noqa: S105
DEMO_USERS = (
    ("admin@demo.cot.local", Role.Kind.ADMINISTRATOR),
    ("standard@demo.cot.local", Role.Kind.STANDARD),
    ("business@demo.cot.local", Role.Kind.BUSINESS),
)
DEMO_GROUPS = ("Berlin plant", "Hamburg warehouse", "Truck fleet")
SIMULATED_DEVICES = 5
DEMO_FIRMWARE_VERSION = "1.0.0"
# The update the demo rolls out: a higher version and security version than the sensors run.
DEMO_UPDATE_VERSION = "1.1.0"
DEMO_UPDATE_SECURITY_VERSION = 1
DEMO_ROLLOUT = f"Sensors to {DEMO_UPDATE_VERSION}"
# One canary, then the rest; each wave soaks briefly and the next follows by itself.
DEMO_ROLLOUT_WAVES = [
    {"count": 1, "soak_seconds": 20, "auto_advance": True},
    {"soak_seconds": 20, "auto_advance": True},
]
DEFAULT_FIRMWARE_KEY = Path(settings.BASE_DIR) / "var" / "demo-firmware-key.pem"


class Command(CrossTenantCommand):
    help = "Create the provider tenant and a demo customer tenant with users and device groups (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--firmware-key",
            type=Path,
            default=DEFAULT_FIRMWARE_KEY,
            help="Where the demo firmware signing key's private half is written (default: %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            self.stderr.write("bootstrap_demo is for local runs; refusing with COT_ENV=production.")
            raise SystemExit(2)
        self.firmware_key: Path = options["firmware_key"]
        with audit_context(job="manage.py bootstrap_demo"), transaction.atomic():
            self._bootstrap()
        self._print_instructions()

    def _bootstrap(self) -> None:
        if not Tenant.objects.filter(kind=Tenant.Kind.PROVIDER).exists():
            provider = do_create_tenant(slug="platform", name="cot platform", provider=True)
            for email, kind in (("operator@platform.cot.local", Role.Kind.OPERATOR),):
                do_create_user(
                    email=email, role=builtin_role(provider, kind), password=DEMO_PASSWORD, actor=None, tenant=provider
                )
        existing = Tenant.objects.filter(slug="demo").first()
        if existing is not None:
            self._add_update_to_existing(existing)
            return
        demo = do_create_tenant(slug="demo", name="Demo Manufacturing GmbH")
        users = {
            kind: do_create_user(
                email=email, role=builtin_role(demo, kind), password=DEMO_PASSWORD, actor=None, tenant=demo
            )
            for email, kind in DEMO_USERS
        }
        groups = [do_create_device_group(name=name, actor=None, tenant=demo) for name in DEMO_GROUPS]
        do_set_device_group_rights(groups[0], rights=["view", "change"], user=users[Role.Kind.STANDARD], actor=None)
        do_set_device_group_rights(groups[0], rights=["view"], role=builtin_role(demo, Role.Kind.BUSINESS), actor=None)
        # The simulated devices `make run` starts: expected, and accepted on their first call.
        do_update_tenant_policy(demo, {"auto_accept_registrations": True})
        sensor = do_create_device_type(
            manufacturer="cot", model="Simulated sensor", certified=True, heartbeat_interval=10, actor=None, tenant=demo
        )
        for number in range(1, SIMULATED_DEVICES + 1):
            do_create_registration(
                external_id=f"SIM-{number:04d}",
                registration_token=DEMO_REGISTRATION_TOKEN,
                type=sensor,
                group=groups[number % 2],
                actor=None,
                tenant=demo,
            )
        self._seed_firmware(demo, sensor)

    def _seed_firmware(self, demo: Tenant, sensor: DeviceType) -> None:
        """A signing key (its private half in a file of the checkout) and a signed, released image."""
        private, public = signing.generate_key()
        key = do_add_signing_key(name="Demo release key", public_key=public, actor=None, tenant=demo)
        content = f"cot demo sensor firmware {DEMO_FIRMWARE_VERSION}\n".encode() * 256
        image = do_upload_firmware_image(
            file=SimpleUploadedFile("demo-sensor.bin", content),
            sha256=hashlib.sha256(content).hexdigest(),
            version=DEMO_FIRMWARE_VERSION,
            device_types=[sensor],
            release_notes="The firmware the simulated sensors start with.",
            actor=None,
            tenant=demo,
        )
        signature = signing.sign(private, selectors.manifest_for(image))
        do_release_firmware_image(image, signature=signature, key_id=key.key_id, actor=None)
        self._seed_update(demo, sensor, private, key)
        self.firmware_key.parent.mkdir(parents=True, exist_ok=True)
        self.firmware_key.unlink(missing_ok=True)  # a key of an earlier demo tenant is worthless now
        descriptor = os.open(self.firmware_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(private)

    def _add_update_to_existing(self, demo: Tenant) -> None:
        """A demo made before the update was part of it gets the update too, if its key file is at hand."""
        if FirmwareImage.objects.filter(tenant=demo, version=DEMO_UPDATE_VERSION).exists():
            return
        sensor = DeviceType.objects.filter(tenant=demo, model="Simulated sensor").first()
        try:
            private = self.firmware_key.read_bytes()
            key_id = signing.key_id(signing.public_key_of(private))
        except (OSError, ValueError):
            return  # no usable key: the demo stays as it is (make reset-demo starts afresh)
        key = SigningKey.objects.filter(tenant=demo, key_id=key_id, revoked_at__isnull=True).first()
        if sensor is not None and key is not None:
            self._seed_update(demo, sensor, private, key)

    def _seed_update(self, demo: Tenant, sensor: DeviceType, private: bytes, key: SigningKey) -> None:
        """The update to watch: a second image signed with the demo key, released, and a draft rollout of it.

        The rollout targets the sensors' type, so it reaches the simulated devices that have
        registered by the time an operator plans it (planning selects them then).
        """
        content = f"cot demo sensor firmware {DEMO_UPDATE_VERSION}\n".encode() * 256
        image = do_upload_firmware_image(
            file=SimpleUploadedFile("demo-sensor-update.bin", content),
            sha256=hashlib.sha256(content).hexdigest(),
            version=DEMO_UPDATE_VERSION,
            security_version=DEMO_UPDATE_SECURITY_VERSION,
            device_types=[sensor],
            release_notes="A demo update: plan and start the rollout to watch the simulated sensors take it.",
            actor=None,
            tenant=demo,
        )
        signature = signing.sign(private, selectors.manifest_for(image))
        image = do_release_firmware_image(image, signature=signature, key_id=key.key_id, actor=None)
        do_create_rollout(
            image=image,
            name=DEMO_ROLLOUT,
            waves=DEMO_ROLLOUT_WAVES,
            target_types=[sensor.pk],
            device_timeout_seconds=300,
            actor=None,
            tenant=demo,
        )

    def _print_instructions(self) -> None:
        url = settings.SITE_URL.rstrip("/") + "/cockpit/"
        self.stdout.write(
            "\n"
            f"  cot cockpit:  {url}\n"
            f"  API docs:     {settings.SITE_URL.rstrip('/')}/api/docs/\n\n"
            f"  Log in as     {DEMO_USERS[0][0]}\n"
            f"  password      {DEMO_PASSWORD}\n\n"
            "  First login walks you through two-factor enrolment: scan the QR code with an\n"
            "  authenticator app (or type the key shown under it), enter the 6-digit code,\n"
            "  and keep the one-time backup codes it shows you. Next time: password + code.\n"
            f"  Other demo users (same password): {', '.join(e for e, _ in DEMO_USERS[1:])},\n"
            "  operator@platform.cot.local (platform operator: tenants, never customer data).\n"
            f"  Firmware: the demo's signing key is {self.firmware_key} (sign with manage.py sign_firmware).\n"
            f"  Rollout:  plan and start the draft rollout {DEMO_ROLLOUT!r} (Firmware → Rollouts) and watch the\n"
            f"            {SIMULATED_DEVICES} simulated sensors update to {DEMO_UPDATE_VERSION} (docs/rollouts.md).\n"
        )
