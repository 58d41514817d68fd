"""The shipped nginx config, run for real: a client cannot forge the client-certificate headers the app believes.

The app trusts ``X-Client-Cert`` from the proxy (``COT_TRUSTED_PROXIES``), so nginx must always overwrite it
with the certificate it verified itself, or with nothing. These tests render ``deploy/nginx.conf`` with
loopback ports and a throwaway PKI, put a recording upstream behind it, and look at what arrives there.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from devices.device_api.auth import certificate_sha256

SHIPPED_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
CERT_HEADERS = ("x-client-cert", "x-client-cert-sha256")

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None:
        pytest.fail(
            "nginx is not installed, so the shipped deploy/nginx.conf cannot be tested. scripts/test.sh installs it "
            "(ensure_system_packages nginx); or: apt-get install nginx openssl"
        )
    return found


def _openssl(directory: Path, *args: str) -> str:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed; scripts/test.sh installs it, or: apt-get install openssl")
    done = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, check=False)  # noqa: S603,S607
    assert done.returncode == 0, f"openssl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


@dataclass(frozen=True)
class Pki:
    """Throwaway certificates: the device CA (which also signs the server), and a CA nginx does not trust."""

    directory: Path

    def path(self, name: str) -> str:
        return str(self.directory / name)

    def sha256(self, cert: str) -> str:
        """``openssl x509 -fingerprint -sha256``, as lowercase hex without colons."""
        out = _openssl(self.directory, "x509", "-noout", "-fingerprint", "-sha256", "-in", cert)
        return out.strip().partition("=")[2].replace(":", "").lower()


def _make_pki(directory: Path) -> Pki:
    directory.mkdir()
    (directory / "openssl.cnf").write_text(OPENSSL_CNF)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def ca(name: str) -> None:
        subject = ["-subj", f"/CN=cot test {name}", "-days", "2"]
        out = ["-keyout", f"{name}.key", "-out", f"{name}.pem"]
        _openssl(directory, "req", "-x509", "-config", "openssl.cnf", "-extensions", "ca_ext", *key, *out, *subject)

    def leaf(name: str, issuer: str, extensions: str, serial: int) -> None:
        request = ["-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=cot test {name}"]
        _openssl(directory, "req", "-new", "-config", "openssl.cnf", *key, *request)
        signer = ["-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key", "-set_serial", str(serial), "-days", "2"]
        extfile = ["-extfile", "openssl.cnf", "-extensions", extensions]
        _openssl(directory, "x509", "-req", "-in", f"{name}.csr", *signer, *extfile, "-out", f"{name}.pem")

    ca("device-ca")
    ca("rogue-ca")
    leaf("server", "device-ca", "server_ext", 1)
    leaf("client", "device-ca", "client_ext", 2)
    leaf("rogue-client", "rogue-ca", "client_ext", 3)
    # The names the shipped config uses under /etc/ssl/cot/.
    shutil.copy(directory / "server.pem", directory / "fullchain.pem")
    shutil.copy(directory / "server.key", directory / "privkey.pem")
    return Pki(directory)


@dataclass
class Upstream:
    """A stand-in for gunicorn that records the headers of every request nginx passes on."""

    server: ThreadingHTTPServer
    requests: list[list[tuple[str, str]]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_address[1]


def _start_upstream() -> Upstream:
    upstream: Upstream

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            upstream.requests.append(list(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def do_POST(self) -> None:
            remaining = int(self.headers.get("Content-Length", "0"))
            while remaining:
                remaining -= len(self.rfile.read(min(remaining, 1 << 20)))
            self.do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    upstream = Upstream(ThreadingHTTPServer(("127.0.0.1", 0), Recorder))
    threading.Thread(target=upstream.server.serve_forever, daemon=True).start()
    return upstream


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _render(directory: Path, pki: Pki, upstream_port: int, http_port: int, https_port: int) -> Path:
    """deploy/nginx.conf with loopback ports, the test PKI and upstream, inside a minimal main config."""
    text = SHIPPED_CONF.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl": f"listen 127.0.0.1:{https_port} ssl",
        "/etc/ssl/cot/": f"{pki.directory}/",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
    }
    for token, value in replacements.items():
        assert token in text, f"deploy/nginx.conf no longer contains {token!r}; update this test's substitutions"
        text = text.replace(token, value)
    (directory / "cot.conf").write_text(text)
    temp_paths = "\n".join(
        f"    {kind}_temp_path {directory}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = directory / "nginx.conf"
    main.write_text(
        f"daemon off;\nmaster_process off;\nworker_processes 1;\npid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log {directory}/access.log;\n{temp_paths}\n    include {directory}/cot.conf;\n}}\n"
    )
    return main


@dataclass(frozen=True)
class Proxy:
    """The running nginx and what sits around it."""

    https_port: int
    pki: Pki
    upstream: Upstream

    def get(self, headers: list[tuple[str, str]], cert: str | None = None) -> tuple[int, list[tuple[str, str]] | None]:
        """The status nginx answers, and the headers the upstream received (None if nothing reached it)."""
        context = ssl.create_default_context(cafile=self.pki.path("device-ca.pem"))
        if cert is not None:
            context.load_cert_chain(self.pki.path(f"{cert}.pem"), self.pki.path(f"{cert}.key"))
        before = len(self.upstream.requests)
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=context, timeout=10)
        try:
            # putheader, not a dict: the same header may be sent several times, in any spelling.
            connection.putrequest("GET", "/api/device/v1/heartbeat")
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        received = self.upstream.requests[before:]
        assert len(received) <= 1
        return response.status, (received[0] if received else None)

    def post(
        self, path: str, size: int, headers: Sequence[tuple[str, str]] = ()
    ) -> tuple[int, list[tuple[str, str]] | None]:
        """POST ``size`` bytes to ``path``: nginx's status, and the headers the upstream received."""
        context = ssl.create_default_context(cafile=self.pki.path("device-ca.pem"))
        before = len(self.upstream.requests)
        connection = http.client.HTTPSConnection("127.0.0.1", self.https_port, context=context, timeout=30)
        try:
            connection.putrequest("POST", path)
            connection.putheader("Content-Type", "application/octet-stream")
            connection.putheader("Content-Length", str(size))
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders()
            chunk = b"\0" * (1 << 20)
            sent = 0
            try:
                while sent < size:
                    connection.send(chunk[: min(len(chunk), size - sent)])
                    sent += min(len(chunk), size - sent)
            except (BrokenPipeError, ConnectionResetError):
                pass  # nginx may answer 413 and close before the body is sent
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        received = self.upstream.requests[before:]
        return response.status, (received[0] if received else None)


def _wait_for_port(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        try:
            # Waits a little between attempts, and notices at once if nginx gave up.
            code = process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"nginx exited with {code}:\n{log.read_text() if log.exists() else ''}")
    pytest.fail(f"nginx did not listen on {port} within 15s:\n{log.read_text() if log.exists() else ''}")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Proxy]:
    nginx = _nginx_binary()
    directory = tmp_path_factory.mktemp("nginx")
    pki = _make_pki(directory / "pki")
    upstream = _start_upstream()
    request.addfinalizer(upstream.server.server_close)
    request.addfinalizer(upstream.server.shutdown)
    https_port = _free_port()
    conf = _render(directory, pki, upstream.port, _free_port(), https_port)
    log = directory / "error.log"
    process = subprocess.Popen(  # noqa: S603 (our own arguments)
        [nginx, "-p", str(directory), "-e", str(log), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    request.addfinalizer(stop)
    _wait_for_port(process, https_port, log)
    yield Proxy(https_port, pki, upstream)


def _cert_headers(received: list[tuple[str, str]]) -> dict[str, list[str]]:
    """The client-certificate headers as the app would see them (Django folds case and "_" into "-")."""
    found: dict[str, list[str]] = {}
    for name, value in received:
        normalised = name.lower().replace("_", "-")
        if normalised in CERT_HEADERS:
            found.setdefault(normalised, []).append(value)
    return found


def _escaped_pem(pki: Pki, cert: str) -> str:
    return quote(Path(pki.path(f"{cert}.pem")).read_text(), safe="")


def test_forged_certificate_headers_without_a_certificate_never_reach_the_app(proxy):
    # The pinned fingerprint and the device's certificate are public; sending them must get nowhere.
    forged_pem = _escaped_pem(proxy.pki, "client")
    forged_sha256 = proxy.pki.sha256("client.pem")
    status, received = proxy.get(
        [
            ("X-Client-Cert", forged_pem),
            ("x-client-cert", forged_pem),
            ("X_Client_Cert", forged_pem),
            ("X-Client-Cert-SHA256", forged_sha256),
            ("X_CLIENT_CERT_SHA256", forged_sha256),
        ]
    )
    assert status == 200 and received is not None
    assert _cert_headers(received) == {}
    assert certificate_sha256(dict(received).get("X-Client-Cert", "")) is None


def test_a_verified_client_certificate_reaches_the_app_and_hashes_to_its_fingerprint(proxy):
    # Forged values alongside a real certificate must not survive either: only nginx's own value does.
    status, received = proxy.get(
        [("X-Client-Cert", _escaped_pem(proxy.pki, "rogue-client")), ("X-Client-Cert-SHA256", "ab" * 32)],
        cert="client",
    )
    assert status == 200 and received is not None
    headers = _cert_headers(received)
    assert list(headers) == ["x-client-cert"] and len(headers["x-client-cert"]) == 1
    (value,) = headers["x-client-cert"]
    assert certificate_sha256(value) == proxy.pki.sha256("client.pem")
    assert certificate_sha256(value) != proxy.pki.sha256("rogue-client.pem")


def test_a_certificate_from_another_ca_is_refused_by_nginx(proxy):
    status, received = proxy.get([], cert="rogue-client")
    assert status == 400
    assert received is None


def test_firmware_uploads_may_be_large_and_every_other_body_stays_small(proxy):
    big = 17 * 1024 * 1024  # over the 16 MiB of every other location
    status, received = proxy.post("/api/v1/firmware/", big, [("X-Client-Cert-SHA256", "ab" * 32)])
    assert status == 200 and received is not None
    assert _cert_headers(received) == {}  # the upload location drops forged headers too
    assert proxy.post("/cockpit/firmware/firmwareimage/add/", big)[0] == 200
    status, received = proxy.post("/api/v1/devices/", big)
    assert status == 413 and received is None
