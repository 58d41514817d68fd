"""``manage.py simulate_devices --tenant SLUG --count N``: devices that use only the public device API."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.simulator import CredentialStore, TrustedKeys, UpdateOptions, run


class Command(BaseCommand):
    help = (
        "Simulate devices over HTTP: register (external ids PREFIX-0001…), wait for acceptance, "
        "then send measurements, events and alarms, execute operations and take firmware updates "
        "(docs/device-updates.md). Ctrl-C stops."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="tenant slug the devices register with")
        parser.add_argument("--count", type=int, default=3)
        parser.add_argument("--prefix", default="SIM", help="external ids are PREFIX-0001, PREFIX-0002, …")
        parser.add_argument("--url", default=settings.SITE_URL, help="base URL of cot")
        parser.add_argument("--registration-token", default=None)
        parser.add_argument("--interval", type=float, default=10.0, help="seconds between rounds")
        parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
        parser.add_argument("--rounds", type=int, default=None, help="stop after this many rounds")
        parser.add_argument(
            "--credentials", default=str(Path(settings.BASE_DIR) / "var" / "simulator" / "credentials.json")
        )
        updates = parser.add_argument_group("firmware updates")
        updates.add_argument("--no-updates", action="store_true", help="do not poll for firmware updates")
        updates.add_argument("--firmware-version", default="1.0.0", help="the version new devices run")
        updates.add_argument("--security-version", type=int, default=0, help="the security version they run")
        updates.add_argument(
            "--trusted-keys",
            default=None,
            help="file of Ed25519 public keys (PEM, or base64 of 32 bytes per line) that may sign firmware; "
            "without it the keys are fetched from firmware/keys once and pinned (trust on first use)",
        )
        updates.add_argument("--fail-share", type=float, default=0.0, help="share (0-1) of installs that fail")
        updates.add_argument(
            "--boot-old-share",
            type=float,
            default=0.0,
            help="share (0-1) of installs that boot back into the old image",
        )
        updates.add_argument("--download-chunk", type=int, default=64 * 1024, help="bytes per Range request")
        updates.add_argument(
            "--max-poll-wait", type=float, default=None, help="cap (seconds) on the server's suggested poll interval"
        )
        updates.add_argument("--allow-unsigned", action="store_true", help="install images that carry no signature")

    def handle(self, *args: Any, **options: Any) -> None:
        external_ids = [f"{options['prefix']}-{n:04d}" for n in range(1, options["count"] + 1)]
        for share in ("fail_share", "boot_old_share"):
            if not 0 <= options[share] <= 1:
                raise CommandError(f"--{share.replace('_', '-')} is a share from 0 to 1.")
        if options["download_chunk"] < 1:
            raise CommandError("--download-chunk must be positive.")
        updates = None
        if not options["no_updates"]:
            try:
                keys = TrustedKeys.from_file(Path(options["trusted_keys"])) if options["trusted_keys"] else None
            except (OSError, ValueError) as exc:
                raise CommandError(f"--trusted-keys: {exc}") from None
            updates = UpdateOptions(
                trusted_keys=keys,
                fail_share=options["fail_share"],
                boot_old_share=options["boot_old_share"],
                chunk_bytes=options["download_chunk"],
                max_poll_seconds=options["max_poll_wait"],
                allow_unsigned=options["allow_unsigned"],
            )
        totals = run(
            base_url=options["url"],
            tenant=options["tenant"],
            external_ids=external_ids,
            token=options["registration_token"],
            interval=options["interval"],
            duration=options["duration"],
            store=CredentialStore(Path(options["credentials"])),
            log=lambda line: self.stdout.write(line),
            rounds=options["rounds"],
            updates=updates,
            firmware_version=options["firmware_version"],
            security_version=options["security_version"],
        )
        self.stdout.write(f"Done: {totals}")
