"""Streaming end to end against a real provider process that streams with pauses."""

from __future__ import annotations

import asyncio
import time

import grpc
import orjson
import pytest
from grpc import aio

from ai1net.v1 import generate_pb2, generate_pb2_grpc
from tests.conftest import Harness, bearer, wait_for


async def setup(harness: Harness, provider_url: str, path: str, name: str = "m-stream",
                kind: str = "text") -> str:
    key = await harness.key("provider", "prov-s")
    await harness.register(key, name=name, type=kind, endpoint=provider_url + path,
                           pricing={"input_per_1k_tokens": 1.0, "output_per_1k_tokens": 2.0})
    return await harness.key("consumer")


async def read_lines(harness: Harness, consumer: str, model: str, *, sse: bool = False,
                     timeout_ms: int | None = None) -> tuple[int, dict[str, str], list[tuple[float, dict]]]:
    headers = bearer(consumer)
    if sse:
        headers["Accept"] = "text/event-stream"
    if timeout_ms:
        headers["x-request-timeout-ms"] = str(timeout_ms)
    lines: list[tuple[float, dict]] = []
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=headers,
                                 json={"model": model, "input": "hi", "stream": True}) as resp:
        if resp.status != 200:
            return resp.status, dict(resp.headers), [(0.0, await resp.json())]
        async for raw in resp.content:
            line = raw.strip()
            if not line:
                continue
            if sse:
                assert line.startswith(b"data: ")
                line = line[6:]
            lines.append((time.perf_counter(), orjson.loads(line)))
        return resp.status, dict(resp.headers), lines


async def test_ndjson_deltas_arrive_as_sent(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/ndjson?n=3&gap_ms=300")
    status, headers, lines = await read_lines(harness, consumer, "m-stream")
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    assert headers["X-Accel-Buffering"] == "no"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["x-ai1net-model"] == "m-stream"
    deltas = [(t, obj) for t, obj in lines if "delta" in obj]
    assert [obj["delta"] for _, obj in deltas] == ["w0 ", "w1 ", "w2 "]
    assert deltas[-1][0] - deltas[0][0] >= 0.25  # not buffered together
    done = lines[-1][1]
    assert done["done"] is True and done["model"] == "m-stream"
    assert done["usage"] == {"input_tokens": 2, "output_tokens": 3}
    assert done["id"].startswith("gen_") and "ttft_ms" in done and "latency_ms" in done
    assert done["cost_usd"] == pytest.approx((2 * 1.0 + 3 * 2.0) / 1000)


async def test_sse_framing_and_sse_provider(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/sse?n=2")
    status, headers, lines = await read_lines(harness, consumer, "m-stream", sse=True)
    assert status == 200
    assert headers["Content-Type"].startswith("text/event-stream")
    assert [obj for _, obj in lines][:2] == [{"delta": "w0 "}, {"delta": "w1 "}]
    assert lines[-1][1]["done"] is True


async def test_plain_json_provider_becomes_one_delta(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/ok")
    _, _, lines = await read_lines(harness, consumer, "m-stream")
    assert [obj for _, obj in lines][0] == {"delta": "ok: hi"}
    assert lines[-1][1]["done"] is True
    assert lines[-1][1]["usage"] == {"input_tokens": 3, "output_tokens": 5}


async def test_stream_without_usage_is_estimated(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/nousage")
    _, _, lines = await read_lines(harness, consumer, "m-stream")
    assert lines[-1][1]["usage"]["estimated"] is True


async def test_image_model_streams_one_output(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/image", name="m-img", kind="image")
    _, _, lines = await read_lines(harness, consumer, "m-img")
    objects = [obj for _, obj in lines]
    assert "image_url" in objects[0]["output"]
    assert objects[1]["done"] is True and len(objects) == 2


async def test_provider_cut_mid_stream_ends_with_error_not_done(harness: Harness,
                                                                provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/cut?n=3&gap_ms=50")
    status, _, lines = await read_lines(harness, consumer, "m-stream")
    assert status == 200
    objects = [obj for _, obj in lines]
    assert objects[:2] == [{"delta": "w0 "}, {"delta": "w1 "}]
    assert objects[-1]["error"]["type"] == "upstream_error"
    assert not any(obj.get("done") for obj in objects)


async def test_grpc_stream_and_cut_gives_non_ok_status(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/ndjson?n=2")
    key = await harness.key("provider", "prov-s")
    await harness.register(key, name="m-cut", type="text",
                           endpoint=provider_url + "/stream/cut?n=2")
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    metadata = (("x-api-key", consumer),)
    messages = [m async for m in stub.GenerateStream(
        generate_pb2.GenerateRequest(model="m-stream", input="hi"), metadata=metadata)]
    assert [m.delta for m in messages[:-1]] == ["w0 ", "w1 "]
    assert messages[-1].done and messages[-1].usage.output_tokens == 2
    call = stub.GenerateStream(generate_pb2.GenerateRequest(model="m-cut", input="hi"),
                               metadata=metadata)
    received = []
    with pytest.raises(aio.AioRpcError) as failure:
        async for message in call:
            received.append(message)
    # Bytes that arrive together with the cut may be lost with it; what matters is
    # that the stream does not end as a success.
    assert received and not any(m.done for m in received)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_error_before_first_byte_is_a_real_status(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/status/503")
    status, _, lines = await read_lines(harness, consumer, "m-stream")
    assert status == 502
    assert lines[0][1]["error"]["type"] == "upstream_error"


async def events(harness: Harness, provider_url: str, path: str, kind: str) -> list[dict]:
    async with harness.http.get(f"{provider_url}/_events", params={"path": path}) as resp:
        return [e for e in (await resp.json())["events"] if e["kind"] == kind]


async def next_event(harness: Harness, provider_url: str, path: str, kind: str,
                     after: int) -> dict:
    """The latest ``kind`` event once there are more than ``after`` of them (the provider is
    another process, so its log is polled)."""
    async with asyncio.timeout(5):
        while len(found := await events(harness, provider_url, path, kind)) <= after:
            await asyncio.sleep(0.02)
    return found[-1]


async def test_http_client_disconnect_closes_provider(harness: Harness, provider_url: str):
    path = "/stream/ndjson"
    consumer = await setup(harness, provider_url, f"{path}?n=50&gap_ms=100")
    before = len(await events(harness, provider_url, path, "disconnect"))
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "m-stream", "input": "hi",
                                       "stream": True}) as resp:
        await resp.content.readline()
        resp.close()  # hang up mid-stream
    closed_at = time.monotonic()  # CLOCK_MONOTONIC: the provider process reads the same clock
    disconnect = await next_event(harness, provider_url, path, "disconnect", before)
    assert disconnect["t"] - closed_at < 0.1


async def test_grpc_cancel_closes_provider(harness: Harness, provider_url: str):
    path = "/stream/sse"
    consumer = await setup(harness, provider_url, f"{path}?n=50&gap_ms=100")
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    before = len(await events(harness, provider_url, path, "disconnect"))
    call = stub.GenerateStream(generate_pb2.GenerateRequest(model="m-stream", input="hi"),
                               metadata=(("x-api-key", consumer),))
    await call.read()
    call.cancel()
    cancelled_at = time.monotonic()
    disconnect = await next_event(harness, provider_url, path, "disconnect", before)
    assert disconnect["t"] - cancelled_at < 0.1


async def test_deadline_shorter_than_provider_gives_504_and_cancels(harness: Harness,
                                                                    provider_url: str):
    path = "/slow/2000"
    consumer = await setup(harness, provider_url, path)
    status, _, lines = await read_lines(harness, consumer, "m-stream", timeout_ms=200)
    assert status == 504
    assert lines[0][1]["error"]["type"] == "timeout"
    await next_event(harness, provider_url, path, "disconnect", 0)


async def test_cancelled_stream_is_billed_for_delivered(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/ndjson?n=50&gap_ms=50")
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "m-stream", "input": "hi",
                                       "stream": True}) as resp:
        for _ in range(3):
            await resp.content.readline()
        resp.close()
    ledger = harness.gateway.ledger
    await wait_for(lambda: ledger.depth > 0 or ledger.written > 0)
    await ledger.flush()
    async with harness.gateway.db.engine.connect() as conn:
        from sqlalchemy import text
        rows = (await conn.execute(text(
            "select outcome, output_tokens, estimated from usage_events"))).all()
    assert len(rows) == 1
    outcome, output_tokens, estimated = rows[0]
    assert outcome == "cancelled"
    assert 1 <= output_tokens < 50
    assert estimated


async def test_no_leaked_tasks_after_streams(harness: Harness, provider_url: str):
    consumer = await setup(harness, provider_url, "/stream/ndjson?n=3")
    await read_lines(harness, consumer, "m-stream")
    baseline = len(asyncio.all_tasks())
    for _ in range(5):
        await read_lines(harness, consumer, "m-stream")
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) <= baseline + 1


async def test_unary_client_hang_up_closes_provider(harness: Harness, provider_url: str):
    path = "/slow/3000"
    consumer = await setup(harness, provider_url, path)
    before = len(await events(harness, provider_url, path, "disconnect"))
    requests = len(await events(harness, provider_url, path, "request"))
    request = asyncio.create_task(harness.generate(consumer, model="m-stream", input="hi"))
    await next_event(harness, provider_url, path, "request", requests)  # it reached the provider
    request.cancel()  # the client goes away mid-call
    closed_at = time.monotonic()
    disconnect = await next_event(harness, provider_url, path, "disconnect", before)
    assert disconnect["t"] - closed_at < 0.1
