"""Webhook destinations that cannot reach inside the platform's network.

A district system's URL is resolved and every address checked twice: when the subscription is
made (`refusal_of_url`: `POST /subscriptions` answers 400 naming `url`) and at each connection
(`GuardedAdapter`), so a name that later resolves elsewhere (DNS rebinding) is refused too. The
connection goes to the address that was checked, never to a second resolution; redirects are
not followed (`channels.WebhookPoster`).

Refused unless inside `WEBHOOK_ALLOWED_NETWORKS` (CIDRs): loopback (allowed in development
mode), private, shared (100.64/10), link-local, multicast, reserved and unspecified addresses,
the cloud metadata endpoints, and anything else that is not a public address. An IPv4 address
inside IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it is.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

# Instance metadata services: reachable from inside a cloud, and full of credentials.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "100.100.100.200", "fd00:ec2::254")
)


# The rules `POST /subscriptions` states (422 naming `url`).
HTTPS_ONLY = "Webhooks must use https."
NO_HOST = "The URL has no host."
BAD_PORT = "The URL's port is not a valid port."
NOT_ALLOWED = "This destination is not allowed: {reason}."
SUBSCRIPTION_RULES = (
    "url uses https (outside development mode)",
    "url resolves to public addresses only (or to WEBHOOK_ALLOWED_NETWORKS)",
)


class DestinationRefused(OSError):
    """The destination resolves to an address webhooks may not reach."""


def parse_networks(text: str) -> tuple:
    """`WEBHOOK_ALLOWED_NETWORKS`: CIDRs separated by commas or spaces."""
    return tuple(
        ipaddress.ip_network(part, strict=False) for part in text.replace(",", " ").split()
    )


def address_refusal(address, allowed=(), allow_loopback: bool = False) -> str | None:
    """Why `address` may not be reached, or None."""
    address = ipaddress.ip_address(address)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return None
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address in METADATA:
        return "a metadata address"
    for name, refused in (
        ("an unspecified address", address.is_unspecified),
        ("a link-local address", address.is_link_local),
        ("a multicast address", address.is_multicast),
        ("a private address", address.is_private),
        ("a reserved address", address.is_reserved),
        ("not a public address", not address.is_global),
    ):
        if refused:
            return name
    return None


def resolve(host: str, port: int) -> list[tuple]:
    """getaddrinfo's (family, address) pairs for a TCP connection to host:port. The legacy
    IPv4 spellings (`127.1`, `0x7f000001`, `017700000001`) are read as inet_aton reads them,
    whatever the resolver makes of them."""
    try:
        packed = socket.inet_aton(host)
    except OSError:
        packed = None
    if packed is not None and ":" not in host:
        return [(socket.AF_INET, (socket.inet_ntoa(packed), port))]
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _, _, _, sockaddr in found]


def refusal_of_host(host: str, port: int, allowed=(), allow_loopback: bool = False) -> str | None:
    """Why a host may not be reached: any of its addresses refused, or it does not resolve."""
    try:
        addresses = resolve(host, port)
    except OSError:
        return "its host name does not resolve"
    for _, sockaddr in addresses:
        reason = address_refusal(sockaddr[0], allowed, allow_loopback)
        if reason is not None:
            return f"it resolves to {reason}"
    return None


def refusal_of_url(url: str, allowed=(), development: bool = False) -> str | None:
    """Why a webhook URL is refused (https only outside development mode), or None."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not development:
        return HTTPS_ONLY
    if not parts.hostname:
        return NO_HOST
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return BAD_PORT
    reason = refusal_of_host(parts.hostname, port, allowed, allow_loopback=development)
    return None if reason is None else NOT_ALLOWED.format(reason=reason)


class _Guarded:
    """A urllib3 connection that connects only to a checked address of its host."""

    allowed: tuple = ()
    allow_loopback: bool = False

    def _new_conn(self):
        addresses = resolve(self._dns_host, self.port)
        last = None
        for _, sockaddr in addresses:
            reason = address_refusal(sockaddr[0], self.allowed, self.allow_loopback)
            if reason is not None:
                raise DestinationRefused(f"refused destination: {self._dns_host} is {reason}")
        for family, sockaddr in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(_seconds(self.timeout))
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                sock.connect(sockaddr)  # the checked address itself: no second resolution
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise last or DestinationRefused(f"refused destination: {self._dns_host} has no address")


def _seconds(timeout):
    """urllib3's connect timeout: seconds, or its "default" sentinel (none)."""
    return timeout if isinstance(timeout, int | float) else None


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose connections check their destination when they connect."""

    def __init__(self, allowed=(), allow_loopback: bool = False, **kwargs):
        guard = {"allowed": tuple(allowed), "allow_loopback": allow_loopback}
        http_conn = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), guard)
        https_conn = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), guard)
        self._pools = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools
