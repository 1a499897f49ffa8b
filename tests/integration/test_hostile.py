"""Whatever a registered provider sends, the gateway answers with the documented error
within the model's time-out, closes the provider's connection, stays within its memory, and
serves the next call (CONTRACT §3). The provider is tests/support/hostile.py, a separate
process speaking raw sockets."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import orjson
import pytest

from tests.conftest import (
    ADMIN_KEY,
    Harness,
    bearer,
    gateway_settings,
    run_harness,
    start_process,
    stop_process,
)

MiB = 1 << 20
LIMITS = {"max_response_bytes": MiB, "max_event_bytes": 64 * 1024, "timeout_ms": 2000,
          "first_byte_timeout_ms": 2000}
# Peak memory a hostile call may add to the test process (which also runs the gateway).
PEAK_BOUND = 48 * MiB

CASES = [  # path, streamed, status, what the message names
    ("/gzip-bomb", False, 502, "decompresses to over 1048576 bytes (max_response_bytes)"),
    ("/deflate-bomb", False, 502, "decompresses to over 1048576 bytes (max_response_bytes)"),
    ("/huge-body", False, 502, "answer is over 1048576 bytes (max_response_bytes)"),
    ("/endless-chunked", False, 502, "answer is over 1048576 bytes (max_response_bytes)"),
    ("/endless-chunked", True, 502, "answer is over 1048576 bytes (max_response_bytes)"),
    ("/header-flood", False, 502, "over 128 header fields"),
    ("/giant-header", False, 502, "header block is over 65536 bytes"),
    ("/endless-line", True, 502, "over 65536 bytes (max_event_bytes)"),
    ("/trickle", False, 504, "has not answered within"),
    ("/cl-and-chunked", False, 502, "Transfer-Encoding can't be present with Content-Length"),
    ("/bad-chunk", False, 502, "Invalid character in chunk size"),
    ("/obs-fold", False, 502, "not valid HTTP"),
    ("/second-answer", False, 502, "a second answer nobody asked for"),
    ("/upgrade", False, 502, "upgrade (HTTP 101)"),
    ("/redirect", False, 502, "redirect (HTTP 302), which the gateway does not follow"),
    ("/deep-json", False, 502, "invalid JSON"),
    ("/invalid-utf8", False, 502, "invalid JSON"),
]


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    process, line = start_process("-m", "tests.support.hostile", "--port", "0")
    yield f"http://127.0.0.1:{line.split()[1]}"
    stop_process(process)


@pytest.fixture
async def gateway(sqlite_url: str) -> AsyncIterator[Harness]:
    async for running in run_harness(gateway_settings(sqlite_url)):
        yield running


def rss_peak_reset() -> int:
    """Reset this process's peak RSS (VmHWM) to its current RSS, and return it in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_bytes("VmHWM")


def status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


async def state(gateway: Harness, hostile_url: str, path: str, *, closed: bool = False) -> dict:
    params = {"path": path, **({"closed": "1"} if closed else {})}
    async with gateway.http.get(f"{hostile_url}/_state", params=params) as resp:
        return dict(await resp.json(content_type=None))


async def call(gateway: Harness, key: str, model: str, *, stream: bool) -> tuple[int, dict]:
    """The status and the body (of a stream: its last object)."""
    async with gateway.http.post(f"{gateway.http_url}/v1/generate", headers=bearer(key),
                                 json={"model": model, "input": "hi", "stream": stream}) as resp:
        lines = (await resp.read()).splitlines()
        return resp.status, orjson.loads(lines[-1])


@pytest.mark.parametrize(("path", "stream", "status", "names"), CASES,
                         ids=[f"{p[1:]}{'-stream' if s else ''}" for p, s, _, _ in CASES])
async def test_a_hostile_answer_is_a_bounded_named_error(gateway: Harness, hostile_url: str,
                                                         path: str, stream: bool, status: int,
                                                         names: str):
    provider, consumer = await gateway.key("provider"), await gateway.key("consumer")
    model = f"hostile{path.replace('/', '-')}"
    await gateway.register(provider, name=model, type="text", endpoint=hostile_url + path,
                           **LIMITS)
    await gateway.register(provider, name="honest", type="text", endpoint=hostile_url + "/ok")
    baseline = rss_peak_reset()
    started = time.monotonic()
    got, body = await call(gateway, consumer, model, stream=stream)
    elapsed = time.monotonic() - started
    peak = status_bytes("VmHWM")

    assert got == status, body
    error = body["error"]
    assert error["type"] == ("timeout" if status == 504 else "upstream_error")
    assert names in error["message"] and repr(model) in error["message"], error
    assert elapsed < LIMITS["timeout_ms"] / 1000 + 1
    assert peak - baseline < PEAK_BOUND, f"peak grew {(peak - baseline) / MiB:.1f} MiB"
    # The provider's connection was closed, and the next call is served.
    assert (await state(gateway, hostile_url, path, closed=True))["open"] == 0
    assert (await call(gateway, consumer, "honest", stream=stream))[0] == 200


async def test_violations_are_counted_and_a_model_that_keeps_at_it_is_ejected(
        gateway: Harness, hostile_url: str):
    provider, consumer = await gateway.key("provider"), await gateway.key("consumer")
    await gateway.register(provider, name="bomber", type="text",
                           endpoint=hostile_url + "/gzip-bomb", **LIMITS)
    statuses = [(await call(gateway, consumer, "bomber", stream=False))[0] for _ in range(5)]
    assert statuses == [502] * 5
    # Ejected: the next call fails fast, without reaching the provider.
    async with gateway.http.post(f"{gateway.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "bomber", "input": "hi"}) as resp:
        assert resp.status == 503, await resp.text()
        assert int(resp.headers["Retry-After"]) >= 1
        assert "ejected" in (await resp.json())["error"]["message"]
    async with gateway.http.get(f"{gateway.http_url}/v1/models/bomber",
                                headers=bearer(consumer)) as resp:
        assert (await resp.json())["stats"]["health"] == "ejected"
    async with gateway.http.get(f"{gateway.http_url}/metrics") as resp:
        metrics = await resp.text()
    assert 'ai1net_upstream_violations_total{kind="response_bytes",model="bomber"} 5.0' \
        in metrics, [line for line in metrics.splitlines() if "violations_total{" in line]


async def test_a_request_the_provider_read_is_never_sent_again(gateway: Harness,
                                                              hostile_url: str):
    """The provider answers, keeps the connection, reads the next request and hangs up:
    that call fails (502) and the provider saw each request exactly once."""
    provider, consumer = await gateway.key("provider"), await gateway.key("consumer")
    await gateway.register(provider, name="hang-up", type="text",
                           endpoint=hostile_url + "/keep-then-hang-up")
    assert (await call(gateway, consumer, "hang-up", stream=False))[0] == 200
    status, body = await call(gateway, consumer, "hang-up", stream=False)
    assert status == 502, body
    assert "closed the kept-alive connection without answering" in body["error"]["message"]
    assert (await state(gateway, hostile_url, "/keep-then-hang-up"))["requests"] == 2


async def test_every_provider_request_carries_the_generation_id_as_idempotency_key(
        gateway: Harness, provider_url: str):
    provider, consumer = await gateway.key("provider"), await gateway.key("consumer")
    await gateway.register(provider, name="echo-idem", type="text", endpoint=provider_url + "/echo")
    status, _, body = await gateway.generate(consumer, model="echo-idem", input="hi")
    assert status == 200, body
    async with gateway.http.get(f"{provider_url}/_events", params={"path": "/echo"}) as resp:
        events = (await resp.json())["events"]
    keys = [e["headers"].get("idempotency-key") for e in events]
    assert body["id"] in keys
    assert ADMIN_KEY not in str(events)


@pytest.mark.parametrize(("path", "names"), [
    ("/huge-body", "answer is over 1048576 bytes (max_response_bytes)"),
    ("/gzip-bomb", "decompresses to over 1048576 bytes (max_response_bytes)"),
    ("/header-flood", "over 128 header fields"),
])
async def test_a_hostile_audio_link_is_a_bounded_502(gateway: Harness, provider_url: str,
                                                     hostile_url: str, path: str, names: str):
    """Speech whose output.audio_url points at a hostile server: fetched through the same
    guarded client and the model's limits, it is the documented 502, memory stays bounded,
    and the link's connection is closed."""
    provider, consumer = await gateway.key("provider"), await gateway.key("consumer")
    model = f"speaker{path.replace('/', '-')}"
    await gateway.register(provider, name=model, type="audio",
                           endpoint=f"{provider_url}/audio/linked?to={hostile_url}{path}",
                           **LIMITS)
    baseline = rss_peak_reset()
    async with gateway.http.post(f"{gateway.http_url}/openai/v1/audio/speech",
                                 headers=bearer(consumer),
                                 json={"model": model, "input": "hi", "voice": "alloy"}) as resp:
        status, body = resp.status, await resp.json()
    peak = status_bytes("VmHWM")
    assert status == 502, body
    assert body["error"]["type"] == "upstream_error"
    assert names in body["error"]["message"] and model in body["error"]["message"], body
    assert peak - baseline < PEAK_BOUND, f"peak grew {(peak - baseline) / MiB:.1f} MiB"
    assert (await state(gateway, hostile_url, path, closed=True))["open"] == 0
