"""``manage.py simulate_devices --tenant SLUG --count N``: devices that use only the public device API."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devices.simulator import CredentialStore, run


class Command(BaseCommand):
    help = (
        "Simulate devices over HTTP: register (external ids PREFIX-0001…), wait for acceptance, "
        "then send measurements, events and alarms and execute operations. Ctrl-C stops."
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

    def handle(self, *args: Any, **options: Any) -> None:
        external_ids = [f"{options['prefix']}-{n:04d}" for n in range(1, options["count"] + 1)]
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
        )
        self.stdout.write(f"Done: {totals}")
