"""SSRF guard for outgoing requests to user-given URLs (alert webhooks).

``check_outbound_url`` accepts only http(s) URLs whose host resolves to public addresses:
loopback, private, link-local, unspecified, multicast and reserved addresses are refused
unless ``allow_private`` (``HERON_ALLOW_PRIVATE_WEBHOOKS=1``); cloud metadata addresses are
refused always. Every address the name resolves to is checked (a name with one public and
one private address is refused), and the checked addresses are returned: connect to one of
those, not to the name again, or a DNS answer that changes in between (rebinding) gets
through. Numeric hosts in any spelling (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``)
resolve to the address they spell, so they are caught the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from heron._errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(f"cannot resolve host {host!r}: {exc}", field="url") from None
    return [str(info[4][0]) for info in infos]


def check_outbound_url(
    url: str, *, allow_private: bool = False, resolve: Resolver = system_resolver
) -> list[Address]:
    """Refuse ``url`` (InvalidInput, field ``url``) unless it is safe to call; return the
    addresses its host resolved to."""
    if not isinstance(url, str) or any(ord(c) < 33 for c in url):
        raise InvalidInput("the URL must not contain spaces or control characters", field="url")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidInput(f"not a valid URL: {exc}", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("only http:// and https:// URLs are allowed", field="url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidInput("the URL has no host", field="url")
    if host in METADATA_NAMES:
        raise InvalidInput(f"{host} is a cloud metadata service", field="url")
    addresses = [_address(a) for a in resolve(host, port)]
    if not addresses:
        raise InvalidInput(f"host {host!r} resolves to no address", field="url")
    for address in addresses:
        _check_address(host, address, allow_private)
    return addresses


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return mapped
    return address


def _check_address(host: str, address: Address, allow_private: bool) -> None:
    if address in METADATA_ADDRESSES:
        raise InvalidInput(f"{host} is a cloud metadata address ({address})", field="url")
    if address.is_multicast or address.is_unspecified:
        raise InvalidInput(f"{host} resolves to a non-routable address ({address})", field="url")
    if address.is_loopback or address.is_link_local or address.is_private:
        if allow_private:
            return
        raise InvalidInput(
            f"{host} resolves to an internal address ({address}); set "
            "HERON_ALLOW_PRIVATE_WEBHOOKS=1 to allow internal targets",
            field="url",
        )
    if address.is_reserved:
        raise InvalidInput(f"{host} resolves to a reserved address ({address})", field="url")
