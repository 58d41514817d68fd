"""Facts about the request that the audit trail and login throttling rely on."""

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(nets: tuple[str, ...]) -> tuple[Network, ...]:
    # Asked for every request (and every forwarded hop): parse each configuration once.
    return tuple(ipaddress.ip_network(net, strict=False) for net in nets)


def is_trusted_proxy(address: str) -> bool:
    """Whether ``address`` is one of the configured reverse proxies."""
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: Any) -> str | None:
    """The caller's address.

    ``X-Forwarded-For`` is believed only when the direct peer is a configured trusted
    proxy, and then only up to the first hop that is not itself a trusted proxy;
    anyone else could write any address into that header.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    if remote is None or not is_trusted_proxy(remote):
        return remote
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(forwarded):
        if not is_trusted_proxy(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return remote
