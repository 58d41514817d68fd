"""A device simulator that speaks only the public device API over HTTP.

It is what a real device does: register with its external id, wait until accepted,
keep its credential, send measurements, events and alarms, and execute operations.
With ``UpdateOptions`` it also takes firmware updates (docs/device-updates.md): it polls
``firmware/next``, downloads the image (resuming with Range), checks its SHA-256 and the
Ed25519 signature over the RFC 8785 manifest against its tenant's keys, reports every
state, "restarts" and reports the version it then runs; it can be told to fail a share
of installs or to boot back into the old image.

It imports nothing of the firmware app (or of Django): it is an HTTP client, as a device is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

USER_AGENT = "cot-simulator/1"


class DeviceApiError(Exception):
    """A non-2xx answer from the device API."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


# A rate-limited device waits as told and tries again, as real firmware should; a few
# times at most, and never long, so that a misconfigured limit shows in the log.
RATE_LIMIT_RETRIES = 3
RATE_LIMIT_MAX_WAIT = 10.0


def send(request: urllib.request.Request, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Send one request; wait out a 429 (``Retry-After``) and resend; other 4xx/5xx raise ``DeviceApiError``."""
    for attempt in range(RATE_LIMIT_RETRIES + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            if exc.code == 429 and attempt < RATE_LIMIT_RETRIES:
                time.sleep(min(RATE_LIMIT_MAX_WAIT, _seconds(exc.headers.get("Retry-After"))))
                continue
            raise DeviceApiError(exc.code, json.loads(body) if body.startswith(b"{") else body.decode()) from None
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _seconds(retry_after: str | None) -> float:
    try:
        return max(0.0, float(retry_after or 1))
    except ValueError:  # an HTTP date: not what our server sends; a second will do
        return 1.0


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
    status, _, body = send(request, timeout=10)
    return status, json.loads(body or b"{}")


def fetch(
    base_url: str, path: str, credential: str | None, headers: Mapping[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """One request whose answer may be anything (a 204, bytes): ``(status, headers, body)``; 4xx/5xx raise."""
    request = urllib.request.Request(  # noqa: S310 - the operator gives an http(s) URL
        path if path.startswith(("http://", "https://")) else f"{base_url.rstrip('/')}/api/device/v1/{path}",
        method=method,
    )
    request.add_header("User-Agent", USER_AGENT)
    if credential:
        request.add_header("Authorization", f"Bearer {credential}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    return send(request, timeout=30)


class TrustedKeys:
    """The Ed25519 public keys a simulated device accepts firmware signatures from, by key id.

    A real device carries them from the factory (a server that could hand out keys could
    also hand out a forger's). The simulator reads them from a file (``--trusted-keys``:
    PEM public keys, or base64 of the raw 32 bytes, one per line), or, without one, asks
    ``firmware/keys`` once and pins what it got for the run (trust on first use), which
    is what a demo needs and what the log says.
    """

    def __init__(self, keys: Mapping[str, bytes] | None = None) -> None:
        self.keys: dict[str, bytes] = dict(keys or {})

    @staticmethod
    def key_id(raw: bytes) -> str:
        return hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def from_text(cls, text: str) -> TrustedKeys:
        raws: list[bytes] = []
        pem: list[str] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("-----BEGIN") or pem:
                pem.append(line)
                if line.startswith("-----END"):
                    key = serialization.load_pem_public_key("\n".join(pem).encode())
                    if not isinstance(key, Ed25519PublicKey):
                        raise ValueError("Only Ed25519 public keys can sign firmware.")
                    raws.append(key.public_bytes_raw())
                    pem = []
                continue
            raw = base64.b64decode(
                line + "=" * (-len(line) % 4), altchars=b"-_" if "-" in line or "_" in line else None
            )
            if len(raw) != 32:
                raise ValueError(f"Not an Ed25519 public key (32 bytes): {line[:12]}…")
            raws.append(raw)
        return cls({cls.key_id(raw): raw for raw in raws})

    @classmethod
    def from_file(cls, path: Path) -> TrustedKeys:
        return cls.from_text(path.read_text())

    @classmethod
    def from_server(cls, base_url: str, credential: str) -> TrustedKeys:
        _, body = call(base_url, "firmware/keys", None, credential, method="GET")
        return cls({item["key_id"]: base64.b64decode(item["public_key"]) for item in body["keys"]})

    def verify(self, manifest: Mapping[str, Any], signature: str | None, key_id: str | None) -> str | None:
        """None if a trusted key signed ``manifest``; else the error code the device reports."""
        if not signature or not key_id:
            return "unsigned"
        raw = self.keys.get(key_id)
        if raw is None:
            return "unknown_key"
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(signature), rfc8785.dumps(manifest))
        except (InvalidSignature, binascii.Error, ValueError, rfc8785.CanonicalizationError):
            return "bad_signature"
        return None


@dataclass
class UpdateOptions:
    """How simulated devices take firmware updates."""

    #: Trusted signing keys; None: ask firmware/keys once per device and pin them (see TrustedKeys).
    trusted_keys: TrustedKeys | None = None
    #: Share (0…1) of installs that fail (reported failed, error_code install_failed).
    fail_share: float = 0.0
    #: Share (0…1) of installs after which the device boots back into its old image.
    boot_old_share: float = 0.0
    #: Bytes per download request (Range); a download interrupted between requests resumes.
    chunk_bytes: int = 64 * 1024
    #: Cap on the server's suggested poll interval (seconds); None: follow it.
    max_poll_seconds: float | None = None
    #: Accept unsigned images (only if the tenant's policy allows releasing them).
    allow_unsigned: bool = False


def _share(device: str, target: int, what: str) -> float:
    """A stable number in [0, 1) per device, target and decision: shares are reproducible, not random."""
    digest = hashlib.sha256(f"{device}:{target}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class SimulatedDevice:
    """One simulated device and its state."""

    external_id: str
    credential: str | None = None
    device_id: int | None = None
    phase: float = field(default_factory=lambda: random.uniform(0, math.tau))  # noqa: S311 - not security
    firmware_version: str = "1.0.0"
    security_version: int = 0
    next_poll: float = 0.0
    # An update in progress: the offer, the bytes so far, and the image to boot after the restart.
    offer: dict[str, Any] | None = None
    partial: bytearray = field(default_factory=bytearray)
    staged: dict[str, Any] | None = None
    #: The organisation's slug: a manifest signed for another one is refused.
    tenant: str = ""

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

    # --- firmware updates ------------------------------------------------------------------

    def report(self, base_url: str, target: int, status: str, **fields: Any) -> dict[str, Any]:
        _, body = call(base_url, "firmware/status", {"target": target, "status": status, **fields}, self.credential)
        return dict(body)

    def update_tick(self, base_url: str, now: float, options: UpdateOptions, log: Callable[[str], Any]) -> str | None:
        """One step of the update cycle; the outcome when one ended (``succeeded``, ``failed:<code>``…)."""
        if self.staged is not None:
            return self._restart(base_url, options, log)
        if now < self.next_poll:
            return None
        query = urllib.parse.urlencode({"security_version": self.security_version, "version": self.firmware_version})
        status, headers, body = fetch(base_url, f"firmware/next?{query}", self.credential)
        if status == 204:
            wait = float(headers.get("Retry-After", "60"))
            if options.max_poll_seconds is not None:
                wait = min(wait, options.max_poll_seconds)
            self.next_poll = now + wait
            return None
        offer = json.loads(body)
        if offer["status"] == "installing":
            # The simulator itself restarted mid-update: it runs what it runs; tell the server.
            self.staged = {"offer": offer, "boot_old": False}
            return self._restart(base_url, options, log)
        return self._install(base_url, offer, options, log)

    def _install(self, base_url: str, offer: dict[str, Any], options: UpdateOptions, log: Callable[[str], Any]) -> str:
        target = offer["target"]
        if self.offer is None or self.offer["sha256"] != offer["sha256"]:
            self.offer, self.partial = offer, bytearray()
        if offer["security_version"] < self.security_version:
            return self._fail(base_url, target, "anti_rollback", log, status="rejected")
        log(f"{self.external_id}: downloading {offer['version']} ({offer['size']} bytes)")
        self.report(base_url, target, "downloading", progress=self._percent(offer))
        etag = f'"{offer["sha256"]}"'
        while len(self.partial) < offer["size"]:
            first = len(self.partial)
            last = min(offer["size"], first + options.chunk_bytes) - 1
            status, _, chunk = fetch(
                base_url, offer["download_url"], self.credential, {"Range": f"bytes={first}-{last}", "If-Range": etag}
            )
            if status == 200:  # the server sent it all (it ignored the range)
                self.partial = bytearray(chunk)
                break
            self.partial += chunk
            self.report(base_url, target, "downloading", progress=self._percent(offer))
        self.report(base_url, target, "downloaded")
        data = bytes(self.partial)
        self.offer, self.partial = None, bytearray()
        manifest = offer.get("manifest") or {}
        if hashlib.sha256(data).hexdigest() != offer["sha256"] or len(data) != offer["size"]:
            return self._fail(base_url, target, "sha256_mismatch", log)
        problem = None
        if offer.get("signature") or not options.allow_unsigned:
            keys = options.trusted_keys
            if keys is None:
                keys = options.trusted_keys = TrustedKeys.from_server(base_url, self.credential or "")
                log(f"{self.external_id}: pinned {len(keys.keys)} signing key(s) from the server (trust on first use)")
            problem = keys.verify(manifest, offer.get("signature"), offer.get("key_id"))
            same = all(manifest.get(k) == offer[k] for k in ("sha256", "size", "version", "security_version"))
            if problem is None and (not same or (self.tenant and manifest.get("tenant") != self.tenant)):
                problem = "manifest_mismatch"
            expires = manifest.get("expires_at")
            if problem is None and expires and expires < datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"):
                problem = "expired"
        if problem is not None:
            return self._fail(base_url, target, problem, log)
        self.report(base_url, target, "verified")
        self.report(base_url, target, "installing")
        if _share(self.external_id, target, "fail") < options.fail_share:
            return self._fail(base_url, target, "install_failed", log)
        boot_old = _share(self.external_id, target, "boot_old") < options.boot_old_share
        self.staged = {"offer": offer, "boot_old": boot_old}
        log(f"{self.external_id}: installed {offer['version']}, restarting")
        return "installing"

    def _restart(self, base_url: str, options: UpdateOptions, log: Callable[[str], Any]) -> str:
        """The restart after installing: boot the new image (or the old one), then say what runs."""
        assert self.staged is not None
        offer, boot_old = self.staged["offer"], self.staged["boot_old"]
        self.staged = None
        if not boot_old and offer["status"] != "installing":
            self.firmware_version, self.security_version = offer["version"], offer["security_version"]
        answer = self.report(base_url, offer["target"], "succeeded", version=self.firmware_version)
        log(f"{self.external_id}: restarted into {self.firmware_version}: {answer['status']} {answer['error_code']}")
        self.next_poll = 0.0
        return answer["status"] if answer["status"] == "succeeded" else f"failed:{answer['error_code']}"

    def _fail(self, base_url: str, target: int, code: str, log: Callable[[str], Any], status: str = "failed") -> str:
        self.report(base_url, target, status, error_code=code)
        log(f"{self.external_id}: update {status}: {code}")
        return f"{status}:{code}"

    def _percent(self, offer: dict[str, Any]) -> int:
        return min(100, len(self.partial) * 100 // max(1, offer["size"]))


class CredentialStore:
    """Credentials kept on disk, since the platform shows each one only once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}

    def load(self, device: SimulatedDevice) -> None:
        saved = self.data.get(device.external_id)
        if saved:
            device.credential, device.device_id = saved["credential"], saved["device_id"]
            device.firmware_version = saved.get("firmware_version", device.firmware_version)
            device.security_version = saved.get("security_version", device.security_version)

    def save(self, device: SimulatedDevice) -> None:
        self.data[device.external_id] = {
            "credential": device.credential,
            "device_id": device.device_id,
            # What the device runs survives the simulator's own restart, as flash does.
            "firmware_version": device.firmware_version,
            "security_version": device.security_version,
        }
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
    updates: UpdateOptions | None = None,
    firmware_version: str = "1.0.0",
    security_version: int = 0,
) -> dict[str, int]:
    """Register every device, then send data every ``interval`` seconds until ``duration`` or ``rounds`` end.

    With ``updates``, each round also takes a step of the firmware update cycle; devices
    start at ``firmware_version``/``security_version`` unless the store remembers better.
    """
    devices = [
        SimulatedDevice(
            external_id, firmware_version=firmware_version, security_version=security_version, tenant=tenant
        )
        for external_id in external_ids
    ]
    for device in devices:
        store.load(device)
    deadline = time.monotonic() + duration if duration else None
    totals = {"measurements": 0, "events": 0, "alarms": 0, "operations": 0}
    if updates is not None:
        totals.update({"updates_succeeded": 0, "updates_failed": 0})
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
                if updates is not None:
                    outcome = device.update_tick(base_url, time.time(), updates, log)
                    if outcome == "succeeded":
                        totals["updates_succeeded"] += 1
                        store.save(device)
                    elif outcome is not None and outcome != "installing":
                        totals["updates_failed"] += 1
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
