"""Simulated devices take a rollout over HTTP against a live server: download, verify, install, restart, report."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audit.models import AuditEntry
from devices import simulator
from devices.models import Device
from devices.services.registration import do_create_registration
from devices.services.registry import do_create_device_type, do_update_device
from devices.simulator import CredentialStore, TrustedKeys, UpdateOptions, run
from firmware import counters, signing
from firmware.models import RolloutTarget, RolloutWave
from tenants.services import do_update_tenant_policy
from tests.factories import make_tenant, make_user
from tests.firmware.updates import content_for, planned, signed_image
from tests.firmware.updates import run as start

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "telemetry"])

TOKEN = "simulated-label-token"


class Fleet:
    """A tenant with simulated devices registered over HTTP and given a device type."""

    def __init__(self, url: str, tmp_path: Path, external_ids: list[str]) -> None:
        self.url = url
        self.tenant = make_tenant("simco")
        self.admin = make_user(self.tenant, "administrator")
        do_update_tenant_policy(self.tenant, {"auto_accept_registrations": True})
        for external_id in external_ids:
            do_create_registration(external_id=external_id, registration_token=TOKEN, actor=None, tenant=self.tenant)
        self.store = CredentialStore(tmp_path / "credentials.json")
        self.lines: list[str] = []
        self.simulate(external_ids, rounds=1)  # register
        self.type = do_create_device_type(manufacturer="ACME", model="Sensor", actor=None, tenant=self.tenant)
        for device in Device.objects.filter(tenant=self.tenant):
            do_update_device(device, {"type": self.type}, actor=None)

    def simulate(self, external_ids: list[str], *, rounds: int, updates: UpdateOptions | None = None) -> dict[str, int]:
        return run(
            base_url=self.url,
            tenant=self.tenant.slug,
            external_ids=external_ids,
            token=TOKEN,
            interval=0,
            duration=None,
            store=self.store,
            log=self.lines.append,
            rounds=rounds,
            updates=updates,
        )

    def target(self, external_id: str) -> RolloutTarget:
        return RolloutTarget.objects.get(device__external_id=external_id, device__tenant=self.tenant)


def test_simulated_devices_take_a_rollout_and_one_booting_its_old_image_fails(live_server, tmp_path, keypair):
    fleet = Fleet(live_server.url, tmp_path, ["SIM-0001", "SIM-0002", "SIM-0003", "OLD-0001"])
    image = signed_image(fleet.tenant, fleet.type, version="2.0.0", security_version=2, keypair=keypair)
    rollout = start(planned(image, fleet.admin))
    healthy = UpdateOptions(max_poll_seconds=0, chunk_bytes=1024)  # keys from firmware/keys, pinned
    totals = fleet.simulate(["SIM-0001", "SIM-0002", "SIM-0003"], rounds=3, updates=healthy)
    assert totals["updates_succeeded"] == 3 and totals["updates_failed"] == 0, fleet.lines
    stubborn = UpdateOptions(max_poll_seconds=0, boot_old_share=1.0)
    assert fleet.simulate(["OLD-0001"], rounds=2, updates=stubborn)["updates_failed"] == 1, fleet.lines
    for external_id in ("SIM-0001", "SIM-0002", "SIM-0003"):
        target = fleet.target(external_id)
        assert (target.status, target.reported_version) == ("succeeded", "2.0.0")
        assert target.started_at is not None and target.finished_at is not None
        assert Device.objects.get(pk=target.device_id).firmware_version == "2.0.0"
    old = fleet.target("OLD-0001")
    assert (old.status, old.error_code, old.reported_version) == ("failed", "booted_old_image", "1.0.0")
    wave = RolloutWave.objects.get(rollout=rollout)
    assert counters.counts([wave.pk]) == {wave.pk: {"succeeded": 3, "failed": 1}}
    assert AuditEntry.objects.filter(event="firmware.target.succeeded").count() == 3
    assert any("pinned 1 signing key" in line for line in fleet.lines)
    # What a device runs survives the simulator's restart (the store), so it is not offered again.
    assert fleet.store.data["SIM-0001"]["firmware_version"] == "2.0.0"


def test_a_signature_by_an_untrusted_key_or_a_share_of_failures_is_reported_failed(live_server, tmp_path, keypair):
    fleet = Fleet(live_server.url, tmp_path, ["SIM-0001", "SIM-0002"])
    image = signed_image(fleet.tenant, fleet.type, version="2.0.0", security_version=2, keypair=keypair)
    start(planned(image, fleet.admin))
    stranger = signing.parse_public_key(signing.generate_key()[1])
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text(base64.b64encode(stranger).decode() + "\n")
    distrustful = UpdateOptions(trusted_keys=TrustedKeys.from_file(keys_file), max_poll_seconds=0)
    fleet.simulate(["SIM-0001"], rounds=1, updates=distrustful)
    assert (fleet.target("SIM-0001").status, fleet.target("SIM-0001").error_code) == ("failed", "unknown_key")
    # The right key from a PEM file, and every install failing.
    keys_file.write_text(keypair[1])
    clumsy = UpdateOptions(trusted_keys=TrustedKeys.from_file(keys_file), max_poll_seconds=0, fail_share=1.0)
    fleet.simulate(["SIM-0002"], rounds=1, updates=clumsy)
    assert (fleet.target("SIM-0002").status, fleet.target("SIM-0002").error_code) == ("failed", "install_failed")


def test_an_interrupted_download_resumes_with_range(live_server, tmp_path, keypair, monkeypatch):
    fleet = Fleet(live_server.url, tmp_path, ["SIM-0001"])
    content = content_for("2.0.0", size=5000)
    image = signed_image(
        fleet.tenant, fleet.type, version="2.0.0", security_version=2, keypair=keypair, content=content
    )
    start(planned(image, fleet.admin))
    ranges: list[str] = []
    real_fetch = simulator.fetch

    def flaky(base_url: str, path: str, credential: Any, headers: Any = None, method: str = "GET") -> Any:
        if "download" in path:
            ranges.append(headers["Range"])
            if len(ranges) == 3:
                raise OSError("link lost")
        return real_fetch(base_url, path, credential, headers, method)

    monkeypatch.setattr(simulator, "fetch", flaky)
    options = UpdateOptions(max_poll_seconds=0, chunk_bytes=2000)
    fleet.simulate(["SIM-0001"], rounds=3, updates=options)
    assert ranges == ["bytes=0-1999", "bytes=2000-3999", "bytes=4000-4999", "bytes=4000-4999"], fleet.lines
    assert any("cannot reach" in line for line in fleet.lines)
    assert fleet.target("SIM-0001").status == "succeeded"


def test_head_and_range_through_a_real_server(live_server, tmp_path, keypair):
    fleet = Fleet(live_server.url, tmp_path, ["SIM-0001"])
    image = signed_image(fleet.tenant, fleet.type, version="2.0.0", security_version=2, keypair=keypair)
    start(planned(image, fleet.admin))
    credential = fleet.store.data["SIM-0001"]["credential"]
    status, _, body = simulator.fetch(live_server.url, "firmware/next?security_version=0", credential)
    offer = json.loads(body)
    status, headers, body = simulator.fetch(live_server.url, offer["download_url"], credential, method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(image.size) and headers["ETag"] == f'"{image.sha256}"'
    status, headers, body = simulator.fetch(live_server.url, offer["download_url"], credential, {"Range": "bytes=-10"})
    assert (
        status == 206
        and len(body) == 10
        and headers["Content-Range"] == f"bytes {image.size - 10}-{image.size - 1}/{image.size}"
    )
