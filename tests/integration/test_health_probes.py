"""Health without traffic (CONTRACT §2.2 ``health_url``): each model's health check probed on
a schedule, with the model's auth, through the provider client's guard and limits; a model
that fails it is out of traffic before any call reaches it, and back once it passes."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.conftest import (
    Harness,
    bearer,
    gateway_settings,
    run_harness,
    start_process,
    stop_process,
)

PROBE_S = 0.1
harness_context = contextlib.asynccontextmanager(run_harness)
CHEAP = {"input_per_1k_tokens": 0.0001, "output_per_1k_tokens": 0.0001}
DEAR = {"input_per_1k_tokens": 0.01, "output_per_1k_tokens": 0.01}


@pytest.fixture
async def gateway(sqlite_url: str) -> AsyncIterator[Harness]:
    async for running in run_harness(gateway_settings(sqlite_url, health_probe_s=PROBE_S)):
        yield running


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    process, line = start_process("-m", "tests.support.hostile", "--port", "0")
    yield f"http://127.0.0.1:{line.split()[1]}"
    stop_process(process)


async def events(gateway: Harness, provider_url: str, path: str) -> list[dict[str, Any]]:
    async with gateway.http.get(f"{provider_url}/_events", params={"path": path}) as resp:
        return [e for e in (await resp.json())["events"] if e["kind"] == "request"]


async def health_of(gateway: Harness, key: str, name: str) -> str:
    async with gateway.http.get(f"{gateway.http_url}/v1/models/{name}",
                                headers=bearer(key)) as resp:
        return str((await resp.json())["stats"]["health"])


async def test_a_model_whose_health_url_fails_is_ejected_before_any_call_reaches_it(
        gateway: Harness, provider_url: str):
    provider, consumer = await gateway.key("provider"), await gateway.key("consumer")
    # The cheaper model would win every `cost` call; its health check says it is down.
    await gateway.register(provider, name="down", type="text", capabilities=["chat"],
                           endpoint=f"{provider_url}/fractional", pricing=CHEAP,
                           credentials={"api_key": "sk-down"},
                           health_url=f"{provider_url}/health/503")
    await gateway.register(provider, name="up", type="text", capabilities=["chat"],
                           endpoint=f"{provider_url}/ok", pricing=DEAR,
                           health_url=f"{provider_url}/health/200")
    prober = gateway.gateway.prober
    await prober.until(lambda: prober.probed("down") and prober.probed("up"))
    assert prober.failing("down") == "HTTP 503"
    assert prober.failing("up") is None
    assert await health_of(gateway, consumer, "down") == "ejected"
    calls_before = len(await events(gateway, provider_url, "/fractional"))

    for _ in range(5):
        status, headers, body = await gateway.generate(
            consumer, input="hi", routing={"capabilities": ["chat"], "strategy": "cost"})
        assert status == 200, body
        assert headers["x-ai1net-model"] == "up"
        assert headers["x-ai1net-attempts"] == "1"  # "down" was not even tried
    assert len(await events(gateway, provider_url, "/fractional")) == calls_before
    # The probe is a GET with the model's own auth.
    probe = (await events(gateway, provider_url, "/health/503"))[-1]
    assert probe["headers"]["authorization"] == "Bearer sk-down"
    assert probe["body"] is None  # no content
    async with gateway.http.get(f"{gateway.http_url}/metrics") as resp:
        metrics = await resp.text()
    assert re.search(r'ai1net_health_probes_total\{model="down",result="fail"\} [1-9]', metrics)
    assert re.search(r'ai1net_health_probes_total\{model="up",result="pass"\} [1-9]', metrics)

    # Its check passes again: back in traffic, the first choice of the next `cost` call.
    async with gateway.http.patch(f"{gateway.http_url}/v1/models/down", headers=bearer(provider),
                                  json={"health_url": f"{provider_url}/health/204"}) as resp:
        assert resp.status == 200, await resp.text()
    await prober.until(lambda: prober.failing("down") is None)
    assert await health_of(gateway, consumer, "down") == "healthy"
    status, headers, _ = await gateway.generate(
        consumer, input="hi", routing={"capabilities": ["chat"], "strategy": "cost"})
    assert (status, headers["x-ai1net-model"]) == (200, "down")


@pytest.mark.parametrize(("path", "reason"), [
    ("/gzip-bomb", "decompresses to over 1048576 bytes (max_response_bytes)"),
    ("/huge-body", "answer is over 1048576 bytes (max_response_bytes)"),
    ("/header-flood", "over 128 header fields"),
    ("/redirect", "HTTP 302"),
    ("/stall", "no answer within 500 ms"),
])
async def test_a_hostile_health_check_is_bounded_and_a_failure(gateway: Harness,
                                                               hostile_url: str, path: str,
                                                               reason: str):
    provider = await gateway.key("provider")
    name = f"probed{path.replace('/', '-')}"
    await gateway.register(provider, name=name, type="text", endpoint=f"{hostile_url}/ok",
                           health_url=hostile_url + path, max_response_bytes=1 << 20,
                           timeout_ms=500, first_byte_timeout_ms=500)
    prober = gateway.gateway.prober
    await prober.until(lambda: prober.failing(name) is not None)
    assert reason in (prober.failing(name) or "")
    assert gateway.gateway.health.stats(name).health == "ejected"


async def test_a_probe_a_kept_alive_connection_dropped_is_sent_once_more(gateway: Harness,
                                                                         hostile_url: str):
    """The provider answers, keeps the connection, reads the next probe and hangs up: a GET
    may go out again (RFC 9110 §9.2.2), so every probe passes; a POST there fails (502,
    test_hostile)."""
    provider = await gateway.key("provider")
    await gateway.register(provider, name="flaky-keep-alive", type="text",
                           endpoint=f"{hostile_url}/ok",
                           health_url=f"{hostile_url}/keep-then-hang-up")
    prober = gateway.gateway.prober
    await prober.until(lambda: prober.settled >= 4)
    assert prober.failing("flaky-keep-alive") is None
    async with gateway.http.get(f"{hostile_url}/_state",
                                params={"path": "/keep-then-hang-up"}) as resp:
        requests = (await resp.json(content_type=None))["requests"]
    # Each connection: one probe answered, one read and dropped, that one sent again.
    assert requests >= 6


async def test_a_health_url_is_checked_like_an_endpoint(gateway: Harness, provider_url: str):
    provider = await gateway.key("provider")
    async with gateway.http.post(f"{gateway.http_url}/v1/models", headers=bearer(provider),
                                 json={"name": "m", "type": "text", "endpoint": provider_url,
                                       "health_url": "ftp://example.com/x"}) as resp:
        assert resp.status == 400
        assert "health_url" in (await resp.json())["error"]["message"]


async def test_probes_stop_cleanly_on_shutdown(sqlite_url: str, hostile_url: str):
    """A probe waiting on a stalled health endpoint when the gateway stops: cancelled and
    awaited, no task left pending (a cancelled exchange closes its connection: http1's
    tests)."""
    async with harness_context(gateway_settings(sqlite_url, health_probe_s=PROBE_S)) as gateway:
        provider = await gateway.key("provider")
        await gateway.register(provider, name="stalled", type="text",
                               endpoint=f"{hostile_url}/ok", health_url=f"{hostile_url}/stall")
        async with asyncio.timeout(5):  # the hostile server is another process: polled
            while (await hostile_state(gateway, hostile_url))["open"] == 0:
                await asyncio.sleep(0.01)
        prober = gateway.gateway.prober
        assert prober.failing("stalled") is None  # still waiting on it
    left = [t.get_name() for t in asyncio.all_tasks() if "health probe" in t.get_name()]
    assert left == []


async def hostile_state(gateway: Harness, hostile_url: str) -> dict[str, int]:
    async with gateway.http.get(f"{hostile_url}/_state", params={"path": "/stall"}) as resp:
        return dict(await resp.json(content_type=None))
