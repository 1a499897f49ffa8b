"""Routing and resilience with real provider processes that fail, stall and recover."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Harness, bearer


async def register(harness: Harness, provider_url: str, name: str, path: str,
                   **spec: Any) -> None:
    key = await harness.key("provider", "router")
    body = {"name": name, "type": "text", "endpoint": provider_url + path,
            "capabilities": ["chat"], "performance": {"avg_latency_ms": 100,
                                                      "accuracy_score": 0.8},
            "pricing": {"input_per_1k_tokens": 0.01, "output_per_1k_tokens": 0.01}}
    body.update(spec)
    await harness.register(key, **body)


async def requests_to(harness: Harness, provider_url: str, path: str) -> int:
    async with harness.http.get(f"{provider_url}/_events", params={"path": path}) as resp:
        return sum(1 for e in (await resp.json())["events"] if e["kind"] == "request")


async def routed(harness: Harness, consumer: str, **routing: Any) -> tuple[int, dict, Any]:
    return await harness.generate(consumer, input="hi", routing={"capabilities": ["chat"],
                                                                  **routing})


@pytest.mark.parametrize(("path", "extra"), [
    ("/status/500", {}),
    ("http://127.0.0.1:9/v1/generate", {}),  # refuses connections
    ("/slow/3000", {"first_byte_timeout_ms": 200}),
])
async def test_retryable_failure_falls_back_once(harness: Harness, provider_url: str,
                                                 path: str, extra: dict[str, Any]):
    cheap = {"pricing": {"input_per_1k_tokens": 0.0001, "output_per_1k_tokens": 0.0001}}
    if path.startswith("http"):
        key = await harness.key("provider", "router")
        await harness.register(key, name="bad", type="text", endpoint=path,
                               capabilities=["chat"], **cheap)
    else:
        await register(harness, provider_url, "bad", path, **cheap, **extra)
    await register(harness, provider_url, "good", "/ok")
    consumer = await harness.key("consumer")
    before = await requests_to(harness, provider_url, path) if not path.startswith("http") else 0
    status, headers, body = await routed(harness, consumer, strategy="cost")
    assert status == 200, body
    assert body["model"] == "good"
    assert headers["x-ai1net-attempts"] == "2"
    assert headers["x-ai1net-model"] == "good"
    assert headers["x-ai1net-route"].startswith("cost")
    if not path.startswith("http"):
        assert await requests_to(harness, provider_url, path) - before == 1


async def test_failing_model_is_ejected_then_recovers(harness: Harness, provider_url: str):
    await register(harness, provider_url, "flaky", "/status/503",
                   pricing={"input_per_1k_tokens": 0.0001, "output_per_1k_tokens": 0.0001})
    await register(harness, provider_url, "steady", "/ok")
    consumer = await harness.key("consumer")
    before = await requests_to(harness, provider_url, "/status/503")
    answered = Counter()
    for _ in range(12):
        status, _, body = await routed(harness, consumer, strategy="cost")
        assert status == 200
        answered[body["model"]] += 1
    flaky_calls = await requests_to(harness, provider_url, "/status/503") - before
    assert flaky_calls == 5  # ejected after five failures in a row
    async with harness.http.get(f"{harness.http_url}/v1/models/flaky",
                                headers=bearer(consumer)) as resp:
        stats = (await resp.json())["stats"]
    assert stats["health"] == "ejected"
    assert stats["requests"] == 5
    assert stats["error_rate"] == 1.0

    provider = await harness.key("provider", "router")
    async with harness.http.patch(f"{harness.http_url}/v1/models/flaky", headers=bearer(provider),
                                  json={"endpoint": provider_url + "/ok"}) as resp:
        assert resp.status == 200
    board = harness.gateway.health
    board._clock = lambda: time.monotonic() + 3600  # the cool-down has passed
    status, _, body = await routed(harness, consumer, strategy="cost")
    assert body["model"] == "flaky"  # the half-open probe goes through and succeeds
    async with harness.http.get(f"{harness.http_url}/v1/models/flaky",
                                headers=bearer(consumer)) as resp:
        assert (await resp.json())["stats"]["health"] in ("healthy", "degraded")
    status, _, body = await routed(harness, consumer, strategy="cost")
    assert body["model"] == "flaky"


async def test_latency_strategy_learns_the_faster_model(harness: Harness, provider_url: str):
    await register(harness, provider_url, "slowpoke", "/slow/250")
    await register(harness, provider_url, "quick", "/ok")
    consumer = await harness.key("consumer")
    for _ in range(8):
        await routed(harness, consumer, strategy="latency")
    later = Counter()
    for _ in range(10):
        _, _, body = await routed(harness, consumer, strategy="latency")
        later[body["model"]] += 1
    assert later["quick"] >= 8


async def test_stream_failing_after_first_byte_is_not_retried(harness: Harness,
                                                              provider_url: str):
    await register(harness, provider_url, "cutter", "/stream/cut?n=3&gap_ms=20",
                   pricing={"input_per_1k_tokens": 0.0001, "output_per_1k_tokens": 0.0001})
    await register(harness, provider_url, "backup", "/stream/ndjson?n=2")
    consumer = await harness.key("consumer")
    before = await requests_to(harness, provider_url, "/stream/ndjson")
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"input": "hi", "stream": True,
                                       "routing": {"strategy": "cost"}}) as resp:
        assert resp.headers["x-ai1net-model"] == "cutter"
        text = await resp.text()
    assert '"error"' in text.splitlines()[-1]
    assert await requests_to(harness, provider_url, "/stream/ndjson") == before


async def test_explicit_model_only_switches_to_named_fallbacks(harness: Harness,
                                                               provider_url: str):
    await register(harness, provider_url, "primary", "/status/500")
    await register(harness, provider_url, "secondary", "/ok")
    consumer = await harness.key("consumer")
    status, _, body = await harness.generate(consumer, model="primary", input="hi")
    assert status == 502
    status, headers, body = await harness.generate(consumer, model="primary", input="hi",
                                                   fallbacks=["secondary"])
    assert status == 200
    assert body["model"] == "secondary"
    assert headers["x-ai1net-attempts"] == "2"


async def test_hedged_call_takes_the_first_answer_and_bills_once(harness: Harness,
                                                                 provider_url: str):
    await register(harness, provider_url, "laggard", "/slow/1500",
                   pricing={"input_per_1k_tokens": 0.0001, "output_per_1k_tokens": 0.0001})
    await register(harness, provider_url, "sprinter", "/ok")
    consumer = await harness.key("consumer")
    started = time.perf_counter()
    status, headers, body = await routed(harness, consumer, strategy="cost", hedge_ms=100)
    assert status == 200
    assert body["model"] == "sprinter"
    assert time.perf_counter() - started < 1.0
    assert headers["x-ai1net-attempts"] == "2"
    await harness.gateway.ledger.flush()
    assert harness.gateway.ledger.written == 1


@pytest.mark.parametrize(("routing", "named"), [
    ({"type": "audio"}, "type 'audio'"),
    ({"capabilities": ["chat", "time-travel"]}, "capability 'time-travel'"),
    ({"max_price_per_1k_tokens": 0.000001}, "max_price_per_1k_tokens"),
    ({"max_latency_ms": 1}, "max_latency_ms"),
])
async def test_no_candidate_names_the_constraint(harness: Harness, provider_url: str,
                                                 routing: dict[str, Any], named: str):
    await register(harness, provider_url, "only", "/ok")
    consumer = await harness.key("consumer")
    status, _, body = await harness.generate(consumer, input="hi", routing=routing)
    assert status == 400
    assert named in body["error"]["message"]
