"""The SSRF guard (issue 2, CONTRACT §5 AI1NET_ALLOW_PRIVATE_ENDPOINTS): with private endpoints
not allowed, a model cannot point at loopback, private, link-local or metadata addresses —
refused at registration, and again at call time for what got in another way."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import Harness, bearer, gateway_settings, run_harness

harness_context = contextlib.asynccontextmanager(run_harness)

PRIVATE_ENDPOINTS = [
    "http://127.0.0.1:3000/v1/generate",
    "http://localhost:3000/v1/generate",
    "http://LOCALHOST./v1/generate",
    "http://10.0.0.1/v1/generate",
    "http://172.16.0.1/v1/generate",
    "http://192.168.1.1/v1/generate",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:3000/v1/generate",
    "http://[::ffff:127.0.0.1]/v1/generate",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://0.0.0.0:3000/v1/generate",
    "http://100.64.0.1/v1/generate",  # carrier-grade NAT: not public either
    "http://127.1/v1/generate",  # short forms resolve to loopback
    "http://2130706433/v1/generate",
]


@pytest.fixture
async def strict(sqlite_url: str) -> AsyncIterator[Harness]:
    """A gateway as deployed: AI1NET_ALLOW_PRIVATE_ENDPOINTS off."""
    async for running in run_harness(gateway_settings(sqlite_url,
                                                      allow_private_endpoints=False)):
        yield running


async def post_model(harness: Harness, key: str, **spec: object) -> tuple[int, dict]:
    async with harness.http.post(f"{harness.http_url}/v1/models", headers=bearer(key),
                                 json={"type": "text", **spec}) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("endpoint", PRIVATE_ENDPOINTS)
async def test_private_endpoint_is_refused_at_registration(strict: Harness, endpoint: str):
    provider = await strict.key("provider")
    status, body = await post_model(strict, provider, name="m-private", endpoint=endpoint)
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request"
    assert body["error"]["message"].startswith("endpoint:")
    assert body["error"].get("field", "endpoint") == "endpoint"
    status, _ = await post_model(strict, provider, name="m-private",
                                 endpoint="https://api.example.com/v1/generate")
    assert status == 201  # nothing of the refused one was kept


async def test_public_looking_endpoint_is_accepted(strict: Harness):
    # api.example.com may not resolve here; an unresolvable name is accepted by design
    # (the call-time guard checks it again).
    provider = await strict.key("provider")
    for name, endpoint in [("m-public", "https://api.example.com/v1/generate"),
                           ("m-public-ip", "https://8.8.8.8/v1/generate"),
                           ("m-port", "http://models.example.org:8080/generate?x=1")]:
        status, body = await post_model(strict, provider, name=name, endpoint=endpoint)
        assert status == 201, body
        assert body["endpoint"] == endpoint


async def test_private_endpoint_is_refused_on_update(strict: Harness):
    provider = await strict.key("provider")
    await strict.register(provider, name="m-public", type="text",
                          endpoint="https://api.example.com/v1/generate")
    for endpoint in ("http://169.254.169.254/latest/meta-data/", "http://localhost/",
                     "http://[::1]/"):
        async with strict.http.patch(f"{strict.http_url}/v1/models/m-public",
                                     headers=bearer(provider),
                                     json={"endpoint": endpoint}) as resp:
            body = await resp.json()
            assert resp.status == 400, body
            assert "endpoint" in body["error"]["message"]
    async with strict.http.get(f"{strict.http_url}/v1/models/m-public",
                               headers=bearer(provider)) as resp:
        assert (await resp.json())["endpoint"] == "https://api.example.com/v1/generate"


async def test_private_endpoints_are_allowed_when_configured(harness: Harness):
    provider = await harness.key("provider")  # the default test harness allows them
    for index, endpoint in enumerate(PRIVATE_ENDPOINTS[:8]):
        status, body = await post_model(harness, provider, name=f"m-{index}", endpoint=endpoint)
        assert status == 201, body


async def test_call_time_guard_refuses_what_was_registered_while_allowed(
        sqlite_url: str, provider_url: str):
    """A database filled while private endpoints were allowed (say, by --demo) served by a
    gateway that does not allow them: the calls are refused, the provider never reached."""
    port = urlsplit(provider_url).port
    paths = {name: f"/auth/ssrf-{secrets.token_hex(6)}" for name in ("by-ip", "by-name")}
    endpoints = {"by-ip": f"http://127.0.0.1:{port}{paths['by-ip']}",
                 "by-name": f"http://localhost:{port}{paths['by-name']}"}
    async with harness_context(gateway_settings(sqlite_url)) as permissive:
        provider = await permissive.key("provider")
        consumer = await permissive.key("consumer")
        for name, endpoint in endpoints.items():
            await permissive.register(provider, name=name, type="text", endpoint=endpoint)
        # Reached while allowed (the provider answers 401 to this path, so: a 502).
        status, _, _ = await permissive.generate(consumer, model="by-ip", input="hi")
        assert status == 502
        assert len(await provider_events(permissive, provider_url, paths["by-ip"])) == 1

    strict_settings = gateway_settings(sqlite_url, allow_private_endpoints=False)
    async with harness_context(strict_settings) as strict_gateway:
        for name in endpoints:
            status, _, body = await strict_gateway.generate(consumer, model=name, input="hi")
            assert status == 502, body
            assert body["error"]["type"] == "upstream_error"
    async with harness_context(gateway_settings(sqlite_url)) as permissive:
        assert len(await provider_events(permissive, provider_url, paths["by-ip"])) == 1
        assert await provider_events(permissive, provider_url, paths["by-name"]) == []


async def provider_events(harness: Harness, provider_url: str, path: str) -> list[object]:
    async with harness.http.get(f"{provider_url}/_events", params={"path": path}) as resp:
        return list((await resp.json())["events"])


async def test_a_private_health_url_is_refused_and_never_probed(sqlite_url: str,
                                                                provider_url: str):
    """Refused at registration like an endpoint; one that got in while private endpoints were
    allowed is refused again at probe time: the probe fails, the provider never reached."""
    async with harness_context(gateway_settings(sqlite_url,
                                                allow_private_endpoints=False)) as strict:
        provider = await strict.key("provider")
        status, body = await post_model(strict, provider, name="m-probe",
                                        endpoint="https://api.example.com/v1/generate",
                                        health_url="http://169.254.169.254/latest/")
        assert status == 400, body
        assert body["error"]["message"].startswith("health_url:")
    path = f"/health/200/ssrf-{secrets.token_hex(6)}"
    async with harness_context(gateway_settings(sqlite_url, health_probe_s=0)) as permissive:
        provider = await permissive.key("provider")
        await permissive.register(provider, name="m-probe", type="text",
                                  endpoint="https://api.example.com/v1/generate",
                                  health_url=f"http://localhost:{urlsplit(provider_url).port}"
                                             f"{path}")
    strict_settings = gateway_settings(sqlite_url, allow_private_endpoints=False,
                                       health_probe_s=0.05)
    async with harness_context(strict_settings) as strict_gateway:
        prober = strict_gateway.gateway.prober
        await prober.until(lambda: prober.failing("m-probe") is not None)
        assert "not a public address" in (prober.failing("m-probe") or "")
        assert await provider_events(strict_gateway, provider_url, path) == []
