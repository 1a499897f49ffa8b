"""One trace from the HTTP client to the provider; metrics and logs that never leak."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from opentelemetry import propagate
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from ai1net.server.app import build_gateway
from ai1net.server.instrumentation import instrument
from ai1net.server.keys import KeyLimits
from ai1net.server.registry import ModelChanges
from ai1net.server.runner import start_bridge
from ai1net.server.telemetry import TraceMode, get_tracer
from ai1net.server.tracing import setup_tracing
from tests.conftest import ADMIN_KEY, Harness, bearer, gateway_settings, run_harness

SECRET = "sk-provider-very-secret-123"
PROMPT = "my private prompt text 42"


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    setup_tracing(environ={}, exporter=exporter)
    instrument()
    return exporter


@pytest.fixture(params=["in-process", "over-grpc"])
async def traced(request: pytest.FixtureRequest, spans: InMemorySpanExporter,
                 sqlite_url: str) -> AsyncIterator[Harness]:
    async for running in run_harness(gateway_settings(sqlite_url), tracing=TraceMode.FULL,
                                     over_grpc=request.param == "over-grpc"):
        yield running


async def register_echo(harness: Harness, provider_url: str, path: str = "/echo") -> str:
    provider = await harness.key("provider", "traced-provider")
    await harness.register(provider, name="traced", type="text", endpoint=provider_url + path,
                           auth_type="bearer", credentials={"api_key": SECRET})
    return await harness.key("consumer", "traced-consumer")


def traced_by(key: str) -> dict[str, str]:
    """The key, and the current span as the caller's ``traceparent``."""
    headers = bearer(key)
    propagate.inject(headers)
    return headers


async def test_one_trace_from_client_to_provider(traced: Harness, spans: InMemorySpanExporter,
                                                 provider_url: str):
    consumer = await register_echo(traced, provider_url)
    spans.clear()
    # The test's own span is the caller: it sends its traceparent.
    with get_tracer().start_as_current_span("client") as client:
        TRACE_ID = f"{client.get_span_context().trace_id:032x}"
        async with traced.http.post(f"{traced.http_url}/v1/generate", headers=traced_by(consumer),
                                    json={"model": "traced", "input": PROMPT,
                                          "parameters": {"max_tokens": 7, "temperature": 0.5}}
                                    ) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert float(resp.headers["x-ai1net-overhead-ms"]) >= 0
    received = body["output"]
    finished = spans.get_finished_spans()
    mine = [s for s in finished if f"{s.context.trace_id:032x}" == TRACE_ID]
    names = {s.name for s in mine}
    assert {"ai1net.generate", "ai1net.route"} <= names
    generate = next(s for s in mine if s.name == "ai1net.generate")
    attributes = dict(generate.attributes or {})
    assert attributes["gen_ai.request.model"] == "traced"
    assert attributes["gen_ai.response.model"] == "traced"
    assert attributes["gen_ai.usage.input_tokens"] == body["usage"]["input_tokens"]
    assert attributes["gen_ai.request.max_tokens"] == 7
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert "gen_ai.operation.name" in attributes
    client_spans = [s for s in mine if s.kind.name == "CLIENT" and "POST" in s.name]
    assert client_spans, names  # the provider call
    server_spans = [s for s in mine if s.kind.name == "SERVER"]
    assert server_spans, names  # at least the bridge's HTTP server span
    by_id = {s.context.span_id: s for s in mine}
    route = next(s for s in mine if s.name == "ai1net.route")
    provider_call = next(s for s in client_spans if s.parent and s.parent.span_id in by_id
                         and by_id[s.parent.span_id].name == "ai1net.route")
    assert route.parent.span_id == generate.context.span_id
    assert provider_call.parent.span_id == route.context.span_id
    assert received == "echo"
    async with traced.http.get(f"{provider_url}/_events", params={"path": "/echo"}) as events:
        last = (await events.json())["events"][-1]
    assert last["headers"]["traceparent"].split("-")[1] == TRACE_ID
    for span in finished:
        text = repr(dict(span.attributes or {})) + repr([e.attributes for e in span.events])
        assert SECRET not in text
        assert consumer not in text
        assert PROMPT not in text


async def test_streaming_call_is_one_trace(traced: Harness, spans: InMemorySpanExporter,
                                           provider_url: str):
    consumer = await register_echo(traced, provider_url, "/stream/ndjson?n=2")
    spans.clear()
    with get_tracer().start_as_current_span("client") as client:
        TRACE_ID = f"{client.get_span_context().trace_id:032x}"
        async with traced.http.post(f"{traced.http_url}/v1/generate", headers=traced_by(consumer),
                                    json={"model": "traced", "input": "hi",
                                          "stream": True}) as resp:
            await resp.read()
    mine = [s for s in spans.get_finished_spans() if f"{s.context.trace_id:032x}" == TRACE_ID]
    generate = next(s for s in mine if s.name == "ai1net.generate")
    assert generate.attributes["gen_ai.usage.output_tokens"] == 2
    # The provider's stream said done: its CLIENT span ended well.
    client_span = next(s for s in mine if s.kind.name == "CLIENT" and "POST" in s.name)
    assert client_span.status.status_code.name == "UNSET", client_span.status
    assert generate.status.status_code.name != "ERROR"


async def test_failed_call_marks_the_span(traced: Harness, spans: InMemorySpanExporter,
                                          provider_url: str):
    consumer = await register_echo(traced, provider_url, "/status/500")
    spans.clear()
    status, _, _ = await traced.generate(consumer, model="traced", input="hi")
    assert status == 502
    generate = next(s for s in spans.get_finished_spans() if s.name == "ai1net.generate")
    assert generate.status.status_code.name == "ERROR"
    assert generate.attributes["error.type"] == "UPSTREAM_ERROR"


async def test_metrics_parse_and_move_without_secrets(harness: Harness, provider_url: str,
                                                      caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    consumer = await register_echo(harness, provider_url)
    for _ in range(3):
        status, _, _ = await harness.generate(consumer, model="traced", input=PROMPT)
        assert status == 200
    async with harness.http.get(f"{harness.http_url}/metrics") as resp:
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = [s for s in families["ai1net_requests"].samples
                if s.name == "ai1net_requests_total" and s.labels.get("model") == "traced"]
    assert sum(s.value for s in requests) == 3
    assert "ai1net_request_latency_seconds" in families
    assert "ai1net_overhead_seconds" in families
    assert "ai1net_usage_buffer_depth" in families
    logs = "\n".join(record.getMessage() + repr(getattr(record, "fields", ""))
                     for record in caplog.records)
    assert "traced" in logs  # the access line is there
    for secret in (SECRET, consumer, PROMPT, ADMIN_KEY):
        assert secret not in text
        assert secret not in logs


async def test_usage_flush_is_its_own_trace_linked_to_calls(traced: Harness,
                                                            spans: InMemorySpanExporter,
                                                            provider_url: str):
    consumer = await register_echo(traced, provider_url)
    spans.clear()
    await traced.generate(consumer, model="traced", input="hi")
    await traced.gateway.ledger.flush()
    finished = spans.get_finished_spans()
    generate = next(s for s in finished if s.name == "ai1net.generate")
    flush = next(s for s in finished if s.name == "ai1net.usage.flush")
    assert flush.context.trace_id != generate.context.trace_id
    assert generate.context.span_id in {link.context.span_id for link in flush.links}


async def raw_post(url: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """HTTP/1.1 over a bare socket: no client instrumentation can touch the headers."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n{head}\r\n".encode() + body)
    answer = await reader.read()
    writer.close()
    return answer


async def test_without_an_exporter_the_callers_trace_still_reaches_the_provider(
        sqlite_url: str, provider_url: str):
    """Light mode (what `serve` runs when no exporter is set): no spans are made by the
    instrumentations, yet the provider's traceparent continues the caller's trace."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    tracing = setup_tracing(environ={}).mode
    assert tracing is TraceMode.LIGHT
    settings = gateway_settings(sqlite_url)
    gateway = await build_gateway(settings, tracing=tracing)
    await gateway.start()
    runner, port = await start_bridge(settings, None, gateway, continue_traces=True)
    try:
        provider = await gateway.keys.create(role="provider", name="p", limits=KeyLimits())
        await gateway.registry.register(provider[0], ModelChanges(
            name="light", type="text", endpoint=provider_url + "/echo"))
        body = orjson.dumps({"model": "light", "input": "hi"})
        answer = await raw_post(f"http://127.0.0.1:{port}", "/v1/generate", {
            "Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json",
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}, body)
        assert answer.startswith(b"HTTP/1.1 200")
        async with aiohttp.ClientSession() as http, http.get(
                f"{provider_url}/_events", params={"path": "/echo"}) as events:
            last = (await events.json())["events"][-1]
        assert last["headers"]["traceparent"].split("-")[1] == trace_id
        # A caller without a trace: the provider still gets a traceparent (CONTRACT §3),
        # starting a new trace.
        answer = await raw_post(f"http://127.0.0.1:{port}", "/v1/generate", {
            "Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}, body)
        assert answer.startswith(b"HTTP/1.1 200")
        async with aiohttp.ClientSession() as http, http.get(
                f"{provider_url}/_events", params={"path": "/echo"}) as events:
            sent = (await events.json())["events"][-1]["headers"]["traceparent"]
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", sent), sent
        assert sent.split("-")[1] not in (trace_id, "0" * 32)
    finally:
        await runner.cleanup()
        await gateway.stop(grace=1)


async def test_the_callers_request_id_reaches_the_access_line(
        harness: Harness, provider_url: str, caplog: pytest.LogCaptureFixture):
    """In process and over gRPC: the HTTP x-request-id is the call's request id."""
    caplog.set_level(logging.INFO, logger="ai1net.access")
    consumer = await register_echo(harness, provider_url)
    async with harness.http.post(f"{harness.http_url}/v1/generate",
                                 headers={**bearer(consumer), "x-request-id": "caller-req-7"},
                                 json={"model": "traced", "input": "hi"}) as resp:
        assert resp.status == 200
        assert resp.headers["x-request-id"] == "caller-req-7"
    lines = [record.fields for record in caplog.records  # type: ignore[attr-defined]
             if record.name == "ai1net.access"]
    assert [line["request_id"] for line in lines] == ["caller-req-7"]
    assert lines[0]["outcome"] == "ok"
