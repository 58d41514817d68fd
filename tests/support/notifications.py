"""Helpers of the notification tests: a webhook receiver on loopback, jobs run as a worker would."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import socket
import threading
import time
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


class DrippingReceiver:
    """A receiver that answers one byte of its headers every 0.2 s for ``seconds``, then completes (200).

    Every byte arrives well within a read timeout, so only a deadline on the whole exchange
    stops a sender from waiting the full ``seconds``.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks/slow"

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                deadline = time.monotonic() + self.seconds
                while time.monotonic() < deadline and not self.stop.wait(0.2):
                    conn.sendall(b"a")
                conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")

    def __enter__(self) -> str:
        threading.Thread(target=self._serve, daemon=True).start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.close()
