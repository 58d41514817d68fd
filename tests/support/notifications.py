"""Helpers of the notification tests: a webhook receiver on loopback, jobs run as a worker would."""

from __future__ import annotations

import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notifications.services.deliveries import deliver
from tests.factories import device_client


class Receiver:
    """A webhook receiver on loopback: records every request, answers the statuses it is given in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = statuses
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses[min(len(receiver.requests), len(receiver.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cot"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def run_jobs(queued: list[tuple[int, float]]) -> list[str]:
    """Run the jobs queued so far (the retries they queue stay queued)."""
    jobs = list(queued)
    queued.clear()
    return [deliver(pk) for pk, _countdown in jobs]


def raise_alarm(credential: str, severity: str, kind: str = "high_temperature") -> Any:
    body = {"type": kind, "severity": severity, "text": "Temperature 81 °C"}
    return device_client(credential).post("/api/device/v1/alarms", body, format="json")


def verified(secret: str, request: dict[str, Any]) -> bool:
    headers, body = request["headers"], request["body"]
    expected = hmac.new(secret.encode(), headers["X-Cot-Timestamp"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(headers["X-Cot-Signature"], f"sha256={expected.hexdigest()}")
