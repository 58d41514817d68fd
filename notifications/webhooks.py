"""Sending one webhook request, to public addresses only unless the operator allows a network.

A webhook URL is the customer's to choose, and the request comes from inside the
operator's network: without care it reaches the database, the metadata service or an
admin interface on a private address (server-side request forgery). So the host is
resolved here, every address it resolves to must be public (or inside
``COT_WEBHOOK_ALLOWED_NETWORKS``), and the connection goes to the address that was
checked (a second lookup could answer differently), with TLS still verified against the
host name. Redirects are not followed; the request times out.

Hand-written on the standard library: the maintained HTTP clients leave address checks
to the caller, and the check must sit between the lookup and the connect.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

MAX_URL_LENGTH = 500


class WebhookRefused(ValueError):
    """The URL is not one cot will send to (scheme, form, or a private address)."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = (network.strip() for network in settings.COT_WEBHOOK_ALLOWED_NETWORKS)
    return [ipaddress.ip_network(network, strict=False) for network in networks if network]


# IPv6 ranges that carry an IPv4 address (NAT64, 6to4, IPv4-compatible) or are deprecated
# site-local: Python counts some of them global, yet they reach IPv4 networks behind gateways.
_TRANSLATING = tuple(
    ipaddress.ip_network(network) for network in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96", "fec0::/10")
)


def address_problem(address: str) -> str | None:
    """Why cot will not connect to ``address`` (an IP), or ``None``."""
    ip = ipaddress.ip_address(address)
    if any(ip in network for network in _allowed_networks()):
        return None
    embeds_ipv4 = isinstance(ip, ipaddress.IPv6Address) and (
        ip.ipv4_mapped is not None or any(ip in network for network in _TRANSLATING)
    )
    if embeds_ipv4 or not ip.is_global or ip.is_multicast:
        return (
            f"{address} is a private, loopback or reserved address; an operator may allow its network "
            "(COT_WEBHOOK_ALLOWED_NETWORKS)."
        )
    return None


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a webhook target, judged without a lookup (IP literals are checked)."""
    if len(url) > MAX_URL_LENGTH:
        return f"A webhook URL has at most {MAX_URL_LENGTH} characters."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "A webhook URL starts with https:// (or http://) and names a host."
    if parts.username or parts.password:
        return "A webhook URL carries no user name or password; authenticate with the signature."
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "The webhook URL's port is not a number from 1 to 65535."
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:
        return None  # a name: its addresses are checked when sending
    return address_problem(parts.hostname)


def target_problem(url: str) -> str | None:
    """What is wrong with ``url`` for a new rule: ``url_problem``, and names that always mean this server."""
    problem = url_problem(url)
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if problem is None and (host == "localhost" or host.endswith(".localhost")):
        problem = address_problem("127.0.0.1")
    return problem


def _resolve(host: str, port: int) -> str:
    """The first address of ``host``, after checking every address it resolves to."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"{host} does not resolve ({error.strerror}).") from None
    except UnicodeError:
        raise WebhookRefused(f"{host} is not a host name that can be looked up.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            raise WebhookRefused(f"{host} resolves to {problem}")
    return addresses[0]


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    problem = url_problem(url)
    if problem is not None:
        raise WebhookRefused(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _resolve(host, port)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def pinned(address_port: Any, *args: Any, **kwargs: Any) -> socket.socket:
        return socket.create_connection((address, port), *args, **kwargs)

    # http.client opens its socket through this hook; the TLS layer still checks the host name.
    connection._create_connection = pinned  # type: ignore[attr-defined]
    target = parts.path or "/"
    return connection, target + (f"?{parts.query}" if parts.query else "")


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body``; the response's status code. ``WebhookRefused`` for a refused target, ``OSError`` otherwise.

    ``timeout`` bounds the whole exchange after the lookup, not only each read: a receiver
    that drips its answer a byte at a time is cut off when it is up (a watchdog shuts the
    socket down, which ends a blocked read).
    """
    connection, target = _connection(url, timeout)
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(timeout, cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", target, body=body, headers={**headers, "Content-Type": "application/json"})
        response = connection.getresponse()
        response.read(64 * 1024)  # a little of the answer, so the connection closes cleanly
        if expired.is_set():
            raise OSError(f"The receiver took longer than {timeout:g} s.")
        return int(response.status)
    except (http.client.HTTPException, OSError) as error:
        if expired.is_set():
            raise OSError(f"The receiver took longer than {timeout:g} s.") from None
        if isinstance(error, OSError) and not isinstance(error, ssl.SSLError):
            raise
        raise OSError(f"{type(error).__name__}: {error}") from None
    finally:
        watchdog.cancel()
        connection.close()
