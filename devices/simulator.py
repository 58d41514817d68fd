"""A device simulator that speaks only the public device API over HTTP.

It is what a real device does: register with its external id, wait until accepted,
keep its credential, send measurements, events and alarms, and execute operations.
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

USER_AGENT = "cot-simulator/1"


class DeviceApiError(Exception):
    """A non-2xx answer from the device API."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


def call(base_url: str, path: str, payload: Any = None, credential: str | None = None, method: str = "POST") -> Any:
    """One JSON request to ``/api/device/v1/<path>``; returns (status, body)."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - the operator gives an http(s) URL
        f"{base_url.rstrip('/')}/api/device/v1/{path}", data=data, method=method
    )
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", USER_AGENT)
    if credential:
        request.add_header("Authorization", f"Bearer {credential}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        raise DeviceApiError(exc.code, json.loads(body) if body.startswith(b"{") else body.decode()) from None


@dataclass
class SimulatedDevice:
    """One simulated device and its state."""

    external_id: str
    credential: str | None = None
    device_id: int | None = None
    phase: float = field(default_factory=lambda: random.uniform(0, math.tau))  # noqa: S311 - not security

    def register(self, base_url: str, tenant: str, token: str | None) -> bool:
        """Ask for a credential; ``True`` once issued, ``False`` while pending."""
        payload = {"tenant": tenant, "external_id": self.external_id}
        if token:
            payload["registration_token"] = token
        status, body = call(base_url, "register", payload)
        if status == 202:
            return False
        self.credential, self.device_id = body["credential"], body["device_id"]
        return True

    def tick(self, base_url: str, now: float) -> dict[str, int]:
        """One round: measurements, sometimes an event or alarm, and pending operations."""
        sent = {"measurements": 0, "events": 0, "alarms": 0, "operations": 0}
        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        temperature = 21 + 4 * math.sin(now / 300 + self.phase) + random.gauss(0, 0.3)
        humidity = 45 + 10 * math.sin(now / 900 + self.phase) + random.gauss(0, 1)
        batch = [
            {"time": stamp, "type": "c8y_Temperature", "series": "T", "value": round(temperature, 2), "unit": "C"},
            {"time": stamp, "type": "c8y_Humidity", "series": "H", "value": round(humidity, 1), "unit": "%"},
        ]
        sent["measurements"] = call(base_url, "measurements", batch, self.credential)[1]["stored"]
        if random.random() < 0.05:  # noqa: S311
            call(base_url, "events", {"time": stamp, "type": "door_opened", "text": "Door opened"}, self.credential)
            sent["events"] = 1
        if temperature > 24.5:
            alarm = {"time": stamp, "type": "high_temperature", "severity": "MAJOR", "text": f"{temperature:.1f} °C"}
            call(base_url, "alarms", alarm, self.credential)
            sent["alarms"] = 1
        _, pending = call(base_url, "operations", None, self.credential, method="GET")
        for operation in pending["operations"]:
            call(base_url, f"operations/{operation['id']}", {"status": "EXECUTING"}, self.credential)
            call(base_url, f"operations/{operation['id']}", {"status": "SUCCESSFUL"}, self.credential)
            sent["operations"] += 1
        return sent


class CredentialStore:
    """Credentials kept on disk, since the platform shows each one only once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def load(self, device: SimulatedDevice) -> None:
        saved = self.data.get(device.external_id)
        if saved:
            device.credential, device.device_id = saved["credential"], saved["device_id"]

    def save(self, device: SimulatedDevice) -> None:
        self.data[device.external_id] = {"credential": device.credential, "device_id": device.device_id}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2))
        self.path.chmod(0o600)


def run(
    *,
    base_url: str,
    tenant: str,
    external_ids: list[str],
    token: str | None,
    interval: float,
    duration: float | None,
    store: CredentialStore,
    log: Any,
    rounds: int | None = None,
) -> dict[str, int]:
    """Register every device, then send data every ``interval`` seconds until ``duration`` or ``rounds`` end."""
    devices = [SimulatedDevice(external_id) for external_id in external_ids]
    for device in devices:
        store.load(device)
    deadline = time.monotonic() + duration if duration else None
    totals = {"measurements": 0, "events": 0, "alarms": 0, "operations": 0}
    done = 0
    while (deadline is None or time.monotonic() < deadline) and (rounds is None or done < rounds):
        started, done = time.monotonic(), done + 1
        for device in devices:
            try:
                if device.credential is None:
                    if not device.register(base_url, tenant, token):
                        log(f"{device.external_id}: registration pending, waiting for acceptance")
                        continue
                    store.save(device)
                    log(f"{device.external_id}: registered as device {device.device_id}")
                for key, count in device.tick(base_url, time.time()).items():
                    totals[key] += count
            except DeviceApiError as exc:
                if exc.status == 401:
                    log(f"{device.external_id}: credential refused; registering again")
                    device.credential = None
                else:
                    log(f"{device.external_id}: {exc}")
            except OSError as exc:
                log(f"{device.external_id}: cannot reach {base_url}: {exc}")
        log(f"sent so far: {totals}")
        if rounds is None or done < rounds:
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return totals
