"""Where a callback may go: only to addresses on the public internet, unless an operator
allows a network (tests, intranets).

A URL is checked by resolving its host and requiring *every* address to be global; the
request then goes to one of the checked addresses (the host name travels only in ``Host``
and TLS SNI), so a DNS answer that changes between the check and the connection (DNS
rebinding) cannot move it. Decimal, octal and hexadecimal IPv4 forms (``2130706433``,
``0177.0.0.1``) are what the resolver makes of them, checked like any other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_CHARS = 2048
RESOLVE_SECONDS = 5.0
# Python calls these global, but they carry (or translate to) IPv4 addresses that may not
# be: NAT64, 6to4, Teredo, IPv4-compatible (::a.b.c.d, deprecated) and IPv4-translated
# (::ffff:0:a.b.c.d); and the discard-only prefix. Reserved and site-local addresses are
# refused as well.
NEVER: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
        "100::/64",
        "::/96",
        "::ffff:0:0:0/96",
    )
)


class UnsafeURL(ValueError):
    """The URL may not receive callbacks; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """A checked callback URL and the address to connect to."""

    url: str
    host: str
    port: int
    address: str

    def request_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = f"{host}:{self.port}"
        return SplitResult(parts.scheme, netloc, parts.path or "/", parts.query, "").geturl()


@lru_cache(maxsize=16)
def networks(spec: str) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p.strip()) for p in spec.split(",") if p.strip())


def _allowed(ip: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    if any(ip in net for net in allowed if net.version == ip.version):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _allowed(ip.ipv4_mapped, allowed)
    if any(ip in net for net in NEVER if net.version == ip.version):
        return False
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or site_local)


def parse(url: str) -> SplitResult:
    """The URL's parts, or :class:`UnsafeURL` saying what is wrong with its form."""
    if len(url) > MAX_URL_CHARS:
        raise UnsafeURL(f"callback_url is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"callback_url is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("callback_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise UnsafeURL("callback_url has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("callback_url must not carry a user name or password")
    if port == 0:
        raise UnsafeURL("callback_url has port 0")
    if any(c in url for c in "\r\n\t ") or not url.isprintable():
        raise UnsafeURL("callback_url holds spaces or control characters")
    return parts


async def resolve(url: str, allowed_networks: str) -> Target:
    """Check ``url`` and pick the address to send to; :class:`UnsafeURL` if any address
    the host resolves to is not public (and not in ``allowed_networks``)."""
    parts = parse(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (TimeoutError, OSError, UnicodeError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise UnsafeURL(f"callback_url's host '{host}' could not be resolved ({reason})") from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except ValueError:
            continue
    if not addresses:
        raise UnsafeURL(f"callback_url's host '{host}' has no address")
    allowed = networks(allowed_networks)
    refused = sorted({str(ip) for ip in addresses if not _allowed(ip, allowed)})
    if refused:
        raise UnsafeURL(
            f"callback_url's host '{host}' resolves to {', '.join(refused)}, which is not a "
            "public address (loopback, private, link-local, shared, reserved or translated "
            "addresses are refused unless the operator allows them in "
            "OBSERVATORY_WEBHOOK_ALLOWED_NETWORKS)"
        )
    return Target(url, host, port, str(addresses[0]))
