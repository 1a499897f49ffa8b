"""Provider endpoints: URL checks and the SSRF guard's rules (applied at registration here,
at call time by http1.py's connection pool)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from ai1net.server.errors import InvalidArgument

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Metadata services that sit on ordinary-looking addresses or names.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254",
))
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def forbidden_address(address: IPAddress) -> bool:
    """Loopback, private, link-local, metadata and other non-public addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (address in METADATA_ADDRESSES or address.is_loopback or address.is_private
            or address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified or not address.is_global)


def parse_endpoint(url: str, field: str = "endpoint") -> str:
    """The endpoint's host, after checking it is an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise InvalidArgument(field, "must be an absolute http(s) URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(field, "must be an absolute http(s) URL")
    if len(url) > 2048:
        raise InvalidArgument(field, "must be at most 2048 characters")
    return parts.hostname


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def forbidden_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost") or host in METADATA_NAMES


async def check_endpoint(url: str, *, allow_private: bool, field: str = "endpoint") -> None:
    """Refuse an endpoint (or another URL the gateway calls: ``field``) that is, or
    resolves to, a non-public address.

    A name that does not resolve now is accepted: the call-time guard checks again.
    """
    host = parse_endpoint(url, field)
    if allow_private:
        return
    literal = literal_address(host)
    if forbidden_name(host) or (literal is not None and forbidden_address(literal)):
        raise InvalidArgument(field, "must not point at a private or local address")
    if literal is not None:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return
    if any(forbidden_address(ipaddress.ip_address(info[4][0])) for info in infos):
        raise InvalidArgument(field, "must not resolve to a private or local address")
