"""Fair share: a model's max_concurrency and the process's in-flight limit shed load at once
(503 `unavailable` with Retry-After, or the next candidate) instead of queueing (CONTRACT §3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Harness, bearer, gateway_settings, run_harness


async def provider_requests(harness: Harness, provider_url: str, path: str) -> int:
    async with harness.http.get(f"{provider_url}/_events", params={"path": path}) as resp:
        return sum(1 for e in (await resp.json())["events"] if e["kind"] == "request")


async def until_requests(harness: Harness, provider_url: str, path: str, count: int) -> None:
    async with asyncio.timeout(10):
        while await provider_requests(harness, provider_url, path) < count:
            await asyncio.sleep(0.02)


async def post(harness: Harness, key: str, **body: object) -> tuple[int, dict, dict]:
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(key),
                                 json={"input": "hi", **body}) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def test_a_model_at_its_max_concurrency_sheds_with_retry_after(harness: Harness,
                                                                      provider_url: str):
    provider, consumer = await harness.key("provider"), await harness.key("consumer")
    path = "/slow/1500"
    await harness.register(provider, name="narrow", type="text", endpoint=provider_url + path,
                           max_concurrency=2)
    before = await provider_requests(harness, provider_url, path)
    held = [asyncio.create_task(post(harness, consumer, model="narrow")) for _ in range(2)]
    await until_requests(harness, provider_url, path, before + 2)
    status, headers, body = await post(harness, consumer, model="narrow")
    assert status == 503, body
    assert body["error"]["type"] == "unavailable"
    assert "max_concurrency" in body["error"]["message"]
    assert int(headers["Retry-After"]) >= 1
    assert [s for s, _, _ in await asyncio.gather(*held)] == [200, 200]
    assert await provider_requests(harness, provider_url, path) == before + 2
    # Shedding is the gateway's doing: the model's health is untouched.
    async with harness.http.get(f"{harness.http_url}/v1/models/narrow",
                                headers=bearer(consumer)) as resp:
        assert (await resp.json())["stats"]["health"] == "healthy"


async def test_a_full_model_moves_on_to_its_fallback(harness: Harness, provider_url: str):
    provider, consumer = await harness.key("provider"), await harness.key("consumer")
    path = "/slow/1200"
    await harness.register(provider, name="busy", type="text", endpoint=provider_url + path,
                           max_concurrency=1)
    await harness.register(provider, name="spare", type="text", endpoint=provider_url + "/ok")
    before = await provider_requests(harness, provider_url, path)
    held = asyncio.create_task(post(harness, consumer, model="busy"))
    await until_requests(harness, provider_url, path, before + 1)
    status, headers, body = await post(harness, consumer, model="busy", fallbacks=["spare"])
    assert status == 200, body
    assert headers["x-ai1net-model"] == "spare"
    assert (await held)[0] == 200


@pytest.fixture
async def one_at_a_time(sqlite_url: str) -> AsyncIterator[Harness]:
    async for running in run_harness(gateway_settings(sqlite_url, max_in_flight=1)):
        yield running


async def test_the_process_sheds_calls_past_its_in_flight_limit(one_at_a_time: Harness,
                                                                provider_url: str):
    harness = one_at_a_time
    provider, consumer = await harness.key("provider"), await harness.key("consumer")
    path = "/slow/1000"
    await harness.register(provider, name="slow", type="text", endpoint=provider_url + path)
    before = await provider_requests(harness, provider_url, path)
    held = asyncio.create_task(post(harness, consumer, model="slow"))
    await until_requests(harness, provider_url, path, before + 1)
    status, headers, body = await post(harness, consumer, model="slow", stream=True)
    assert status == 503, body
    assert "calls in flight" in body["error"]["message"]
    assert int(headers["Retry-After"]) >= 1
    assert (await held)[0] == 200
    assert (await post(harness, consumer, model="slow"))[0] == 200  # the slot came back
    async with harness.http.get(f"{harness.http_url}/metrics") as resp:
        assert 'ai1net_calls_shed_total{scope="process"} 1.0' in await resp.text()
