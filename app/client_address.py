"""The address a request came from, as far as this deployment can vouch for it.

Without trusted proxies it is the socket's peer address: ``X-Forwarded-For`` is whatever
the client chose to write, so it is ignored. Behind ``TRUSTED_PROXY_COUNT`` proxies, each
of which appends the address it received the request from, the client is the entry that
many places from the right; anything further left was written by the client itself. A
header with fewer entries than that did not pass the expected proxies, and the peer address
stands. An address that cannot be read is None: no allow-list contains it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """'203.0.113.0/24, 2001:db8::/32, 198.51.100.7' -> networks (a bare address is a /32
    or /128); raises ValueError naming the entry that is not a network."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an IP network (use e.g. 203.0.113.0/24)") from None
    return tuple(networks)


def _address(text: str | None) -> IPAddress | None:
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped  # ::ffff:203.0.113.9 is 203.0.113.9
    return address


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted_proxies: int) -> IPAddress | None:
    if trusted_proxies > 0 and forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",")]
        if len(hops) >= trusted_proxies:
            return _address(hops[-trusted_proxies])
    return _address(peer)


def allowed(address: IPAddress | None, networks: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in networks)
