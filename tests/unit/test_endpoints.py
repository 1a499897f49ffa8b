"""server/endpoints.py: URL shape checks and the SSRF guard, without a network."""

from __future__ import annotations

import ipaddress

import pytest

from ai1net.server.endpoints import (
    check_endpoint,
    forbidden_address,
    forbidden_name,
    literal_address,
    parse_endpoint,
)
from ai1net.server.errors import InvalidArgument


@pytest.mark.parametrize(("url", "host"), [
    ("https://api.example.com/v1/generate", "api.example.com"),
    ("http://API.Example.com:8443/x?y=1", "api.example.com"),
    ("http://127.0.0.1:3000/v1/generate", "127.0.0.1"),
    ("http://[::1]:3000/", "::1"),
    ("https://user:pw@models.example.org/", "models.example.org"),
])
def test_parse_endpoint_gives_the_host(url: str, host: str):
    assert parse_endpoint(url) == host


@pytest.mark.parametrize("url", [
    "", "/v1/generate", "api.example.com/v1", "ftp://api.example.com/x", "file:///etc/passwd",
    "javascript:alert(1)", "http://", "https:///path", "http://[::1/", "http://a:99999/",
    "http://a:port/", "mailto:someone@example.com", "https://" + "a" * 2048 + ".com/",
])
def test_parse_endpoint_refuses_what_is_not_an_absolute_http_url(url: str):
    with pytest.raises(InvalidArgument) as failure:
        parse_endpoint(url)
    assert failure.value.field == "endpoint"
    assert "endpoint" in failure.value.message


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", ipaddress.ip_address("127.0.0.1")),
    ("[::1]", ipaddress.ip_address("::1")),
    ("::ffff:10.0.0.1", ipaddress.ip_address("::ffff:10.0.0.1")),
    ("example.com", None),
    ("2130706433", None),  # a number, not an address literal: left to the resolver
    ("", None),
])
def test_literal_address(host: str, expected: object):
    assert literal_address(host) == expected


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.255.0.9", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "169.254.170.2", "100.100.100.200", "100.64.0.1", "0.0.0.0", "255.255.255.255",
    "224.0.0.1", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1",
    "::ffff:169.254.169.254", "192.0.2.1", "198.18.0.1",
])
def test_forbidden_addresses(address: str):
    assert forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34",
                                     "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str):
    assert not forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(("host", "forbidden"), [
    ("localhost", True), ("LOCALHOST.", True), ("api.localhost", True),
    ("metadata.google.internal", True), ("Metadata.Google.Internal.", True),
    ("metadata", True), ("instance-data", True),
    ("api.example.com", False), ("localhost.example.com", False), ("mylocalhost", False),
])
def test_forbidden_names(host: str, forbidden: bool):
    assert forbidden_name(host) is forbidden


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:3000/v1/generate", "http://localhost/v1", "http://10.0.0.1/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://[::ffff:127.0.0.1]/",
    "http://0.0.0.0:80/", "http://127.1/", "http://2130706433/", "http://0x7f000001/",
])
async def test_check_endpoint_refuses_private_targets(url: str):
    with pytest.raises(InvalidArgument) as failure:
        await check_endpoint(url, allow_private=False)
    assert failure.value.field == "endpoint"


@pytest.mark.parametrize("url", ["http://127.0.0.1:3000/v1/generate", "http://localhost/",
                                 "http://169.254.169.254/"])
async def test_check_endpoint_allows_private_targets_when_asked(url: str):
    await check_endpoint(url, allow_private=True)


async def test_check_endpoint_still_checks_the_shape_when_private_is_allowed():
    with pytest.raises(InvalidArgument):
        await check_endpoint("ftp://127.0.0.1/", allow_private=True)


async def test_check_endpoint_accepts_public_and_unresolvable_names():
    await check_endpoint("https://8.8.8.8/v1/generate", allow_private=False)
    # Does not resolve (no DNS here, or .invalid anywhere): accepted, the call-time guard
    # checks again.
    await check_endpoint("https://gateway-test.invalid/v1/generate", allow_private=False)
