"""Tracing: configuration from OTEL_*, the GenAI attributes, OTLP export to real receivers,
and the instrumentations joining HTTP, gRPC and SQL into one trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import grpc
import pytest
from aiohttp import web
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ai1net.common.tracecontext import ContinuedTrace, inject
from ai1net.server.instrumentation import (
    grpc_client_interceptors,
    grpc_server_interceptor,
    instrument,
    instrument_engine,
)
from ai1net.server.telemetry import (
    LightSpan,
    call_context,
    generate_span_attributes,
    get_tracer,
    record_error,
    usage_flush_span,
)
from ai1net.server.tracing import (
    ReconfigurableTracerProvider,
    setup_tracing,
)
from ai1net.server.transport import HttpTransport, ProviderRequest

# grpc-stubs does not declare grpc.aio.EOF, the sentinel read() returns at stream end.
EOF: object = aio.EOF  # type: ignore[attr-defined]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
ATTRIBUTES = generate_span_attributes(
    model_type="text", request_model="", response_model="m1", response_id="call-1",
    input_tokens=12, output_tokens=34, max_tokens=64, temperature=0.2,
    route_strategy="latency", route_attempts=2, fallback=True, cost_usd=0.0004, ttft_ms=15.5)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    setup_tracing(environ={}, exporter=exporter)
    yield exporter
    setup_tracing(environ={})


@pytest.fixture
def untraced() -> Iterator[None]:
    """For tests that configure exporters from the environment: none is left behind."""
    yield
    setup_tracing(environ={})


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {span.name: span for span in exporter.get_finished_spans()}


def make_generate_trace() -> None:
    tracer = get_tracer()
    with (tracer.start_as_current_span("ai1net.generate", attributes=ATTRIBUTES),
          tracer.start_as_current_span("ai1net.route", attributes={"ai1net.route.attempts": 2})):
        pass


def test_a_usage_flush_is_its_own_trace_linked_to_its_calls(spans):
    contexts = []
    for _ in range(2):
        with get_tracer().start_as_current_span("ai1net.generate"):
            context = call_context()
            assert context is not None
            contexts.append(context)
    assert call_context() is None
    with get_tracer().start_as_current_span("unrelated"), usage_flush_span([*contexts, None,
                                                                            contexts[0]]):
        pass
    flush = by_name(spans)["ai1net.usage.flush"]
    assert flush.parent is None
    assert flush.context.trace_id not in {context.trace_id for context in contexts}
    assert [link.context for link in flush.links] == contexts


# -- configuration ----------------------------------------------------------------------------


def test_a_generate_span_carries_the_genai_attributes(spans):
    make_generate_trace()
    generate = by_name(spans)["ai1net.generate"]
    route = by_name(spans)["ai1net.route"]
    assert dict(generate.attributes or {}) == {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.provider.name": "ai1net",
        "gen_ai.system": "ai1net",
        "gen_ai.response.model": "m1",
        "gen_ai.response.id": "call-1",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 34,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.request.temperature": 0.2,
        "ai1net.route.strategy": "latency",
        "ai1net.route.attempts": 2,
        "ai1net.route.fallback": True,
        "ai1net.cost_usd": 0.0004,
        "ai1net.ttft_ms": 15.5,
    }
    assert route.parent is not None
    assert route.parent.span_id == generate.context.span_id


def test_image_and_audio_are_generate_content():
    assert generate_span_attributes(model_type="image", request_model="painter") == {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "ai1net",
        "gen_ai.system": "ai1net",
        "gen_ai.request.model": "painter",
    }


def test_record_error_sets_status_and_error_type(spans):
    with get_tracer().start_as_current_span("ai1net.generate", record_exception=False,
                                            set_status_on_exception=False) as span:
        record_error(span, "UpstreamRateLimited")
    finished = by_name(spans)["ai1net.generate"]
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "UpstreamRateLimited"
    assert not finished.events


def test_setup_is_global_once_and_reconfigurable(spans):
    provider = setup_tracing(environ={}, exporter=spans)
    assert isinstance(provider, ReconfigurableTracerProvider)
    assert trace.get_tracer_provider() is provider

    second = InMemorySpanExporter()
    assert setup_tracing(environ={}, exporter=second) is provider
    make_generate_trace()
    assert set(by_name(second)) == {"ai1net.generate", "ai1net.route"}
    assert not spans.get_finished_spans()


def test_without_an_exporter_trace_context_still_propagates(untraced):
    setup_tracing(environ={"OTEL_TRACES_EXPORTER": "none"})
    carrier: dict[str, str] = {}
    with get_tracer().start_as_current_span("ai1net.generate") as span:
        propagate.inject(carrier)
    context = span.get_span_context()
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00", trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id))
    # Not recorded (nothing exports it), so not marked sampled; a caller's sampled
    # traceparent would be honoured (parent-based).
    assert not int(flags, 16) & 1


def test_light_spans_continue_the_callers_trace_with_their_own_span_id(untraced):
    setup_tracing(environ={"OTEL_TRACES_EXPORTER": "none"})
    caller = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=x"}
    with ContinuedTrace(caller), LightSpan() as span:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        assert trace.get_current_span() is span
    assert not span.is_recording()
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")  # the caller's sampling
    assert span_id not in (PARENT_ID, "0" * 16)
    assert carrier["tracestate"] == "vendor=x"
    assert trace.get_current_span() is trace.INVALID_SPAN  # detached on the way out


def test_light_spans_start_a_trace_of_their_own_without_a_caller(untraced):
    setup_tracing(environ={"OTEL_TRACES_EXPORTER": "none"})
    with LightSpan() as first, LightSpan() as nested:
        pass
    with LightSpan() as second:
        pass
    ids = [span.get_span_context() for span in (first, nested, second)]
    assert all(context.is_valid and not context.trace_flags.sampled for context in ids)
    assert ids[0].trace_id == ids[1].trace_id != ids[2].trace_id
    assert len({context.span_id for context in ids}) == 3


@pytest.mark.parametrize("caller", [
    {},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00", "tracestate": "a=1,b=2"},
    {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "baggage": "tenant=t1"},
])
def test_inject_writes_what_the_default_propagators_write(untraced, caller):
    setup_tracing(environ={"OTEL_TRACES_EXPORTER": "none"})
    context = propagate.extract(caller)
    token = otel_context.attach(context)
    try:
        with LightSpan():
            ours: dict[str, str] = {}
            inject(ours)
            theirs: dict[str, str] = {}
            propagate.inject(theirs)
    finally:
        otel_context.detach(token)
    assert ours == theirs
    assert "traceparent" in ours  # the light span's, in the caller's trace or a new one


def test_inject_defers_to_other_propagators(untraced, monkeypatch):
    class Marker(propagate.textmap.TextMapPropagator):  # type: ignore[misc]
        def inject(self, carrier, context=None, setter=None):
            carrier["x-marker"] = "1"

        def extract(self, carrier, context=None, getter=None):
            return context

        @property
        def fields(self):
            return {"x-marker"}

    monkeypatch.setattr(propagate, "get_global_textmap", Marker)
    carrier: dict[str, str] = {}
    inject(carrier)
    assert carrier == {"x-marker": "1"}


def test_sampler_comes_from_the_environment():
    dropped, kept = InMemorySpanExporter(), InMemorySpanExporter()
    setup_tracing(environ={"OTEL_TRACES_SAMPLER": "always_off"}, exporter=dropped)
    make_generate_trace()
    assert not dropped.get_finished_spans()
    setup_tracing(environ={"OTEL_TRACES_SAMPLER": "traceidratio",
                           "OTEL_TRACES_SAMPLER_ARG": "1"}, exporter=kept)
    make_generate_trace()
    assert len(kept.get_finished_spans()) == 2
    setup_tracing(environ={})


@pytest.mark.parametrize(("environ", "message"), [
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin"),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
    ({"OTEL_TRACES_SAMPLER": "sometimes"}, "sometimes"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"}, "half"),
    ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "within"),
])
def test_invalid_settings_are_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        setup_tracing(environ=environ)


def test_console_exporter_prints_spans(untraced, capsys):
    provider = setup_tracing(environ={"OTEL_TRACES_EXPORTER": "console"})
    make_generate_trace()
    assert provider.force_flush(5000)
    assert '"name": "ai1net.generate"' in capsys.readouterr().out


# -- OTLP to real receivers -------------------------------------------------------------------


def exported(requests: list[trace_service_pb2.ExportTraceServiceRequest]) -> dict[str, object]:
    return {span.name: span for request in requests for resource in request.resource_spans
            for scope in resource.scope_spans for span in scope.spans}


def check_exported(requests: list[trace_service_pb2.ExportTraceServiceRequest],
                   provider: ReconfigurableTracerProvider) -> None:
    spans = exported(requests)
    generate, route = spans["ai1net.generate"], spans["ai1net.route"]
    assert route.trace_id == generate.trace_id  # type: ignore[attr-defined]
    assert route.parent_span_id == generate.span_id  # type: ignore[attr-defined]
    attributes = {kv.key: kv.value for kv in generate.attributes}  # type: ignore[attr-defined]
    assert attributes["gen_ai.response.model"].string_value == "m1"
    assert attributes["gen_ai.usage.input_tokens"].int_value == 12
    assert attributes["ai1net.route.fallback"].bool_value is True
    resource = {kv.key: kv.value.string_value
                for kv in requests[0].resource_spans[0].resource.attributes}
    assert resource["service.name"] == provider.resource.attributes["service.name"]


async def test_otlp_http_export_decodes_into_the_same_spans(untraced):
    requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def receive(request: web.BaseRequest) -> web.Response:
        assert request.path == "/v1/traces"
        assert request.headers["Content-Type"] == "application/x-protobuf"
        requests.append(trace_service_pb2.ExportTraceServiceRequest.FromString(
            await request.read()))
        return web.Response(body=trace_service_pb2.ExportTraceServiceResponse()
                            .SerializeToString(), content_type="application/x-protobuf")

    # A low-level server: an instrumented web.Application would trace its own receiving.
    runner = web.ServerRunner(web.Server(receive))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        provider = setup_tracing(environ={
            "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}/"})
        make_generate_trace()
        # The exporter blocks its thread on the receiver, which runs on this loop.
        assert await asyncio.to_thread(provider.force_flush, 10_000)
        check_exported(requests, provider)
        await asyncio.to_thread(setup_tracing, environ={})
    finally:
        await runner.cleanup()


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(self, request, context):
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


def test_otlp_grpc_export_decodes_into_the_same_spans(untraced):
    # A sync server: a grpc.aio one, instrumented, would trace its own receiving forever.
    receiver = TraceReceiver()
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        provider = setup_tracing(environ={
            "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
        make_generate_trace()
        assert provider.force_flush(10_000)
        check_exported(receiver.requests, provider)
        setup_tracing(environ={})
    finally:
        server.stop(None)


# -- instrumentations -------------------------------------------------------------------------


async def test_http_server_to_provider_is_one_trace_continued_from_the_caller(spans):
    instrument()
    instrument()  # idempotent
    seen: dict[str, str] = {}

    async def provider(request: web.BaseRequest) -> web.Response:
        seen["traceparent"] = request.headers["traceparent"]
        return web.json_response({"output": "hi"})

    provider_runner = web.ServerRunner(web.Server(provider))
    await provider_runner.setup()
    await web.TCPSite(provider_runner, "127.0.0.1", 0).start()
    provider_url = f"http://user:pw@127.0.0.1:{provider_runner.addresses[0][1]}/v1?key=secret"

    transport = HttpTransport(allow_private=True, record_spans=True)

    async def call(_request: web.Request) -> web.Response:
        headers: dict[str, str] = {}
        propagate.inject(headers)  # as providers.py does: the client span replaces it
        request = ProviderRequest(url=provider_url, headers=headers, body=b"{}",
                                  first_byte_timeout=5)
        async with transport.open(request) as answer:
            return web.json_response(json.loads(await answer.read()))

    app = web.Application()
    app.router.add_post("/v1/generate", call)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as client:
            url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/generate"
            headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
            async with client.post(url, headers=headers) as response:
                assert await response.json() == {"output": "hi"}
    finally:
        await runner.cleanup()
        await provider_runner.cleanup()
        await transport.close()

    finished = spans.get_finished_spans()
    server = next(span for span in finished if span.kind is SpanKind.SERVER)
    outgoing = next(span for span in finished if span.kind is SpanKind.CLIENT)
    assert {trace.format_trace_id(span.context.trace_id) for span in finished} == {TRACE_ID}
    assert server.parent is not None
    assert trace.format_span_id(server.parent.span_id) == PARENT_ID
    assert outgoing.parent is not None
    assert outgoing.parent.span_id == server.context.span_id
    assert seen["traceparent"] == (f"00-{TRACE_ID}-"
                                   f"{trace.format_span_id(outgoing.context.span_id)}-01")
    recorded = " ".join(str(value) for span in finished
                        for value in (span.attributes or {}).values())
    assert "secret" not in recorded
    assert "pw" not in recorded


async def say(request: bytes, _context: aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def write_twice(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> None:
    await context.write(request)
    await context.write(request)


async def yield_twice(request: bytes, _context: aio.ServicerContext[bytes, bytes]):
    yield request
    yield request


async def traced_echo_server() -> tuple[aio.Server, int]:
    server = aio.server(interceptors=[grpc_server_interceptor()])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Echo", {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Write": grpc.unary_stream_rpc_method_handler(write_twice),
        "Yield": grpc.unary_stream_rpc_method_handler(yield_twice),
    })])
    health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def test_grpc_client_and_server_spans_join_one_trace_and_health_is_untraced(spans):
    server, port = await traced_echo_server()
    try:
        target = f"127.0.0.1:{port}"
        async with aio.insecure_channel(target, interceptors=grpc_client_interceptors()) as channel:
            with get_tracer().start_as_current_span("caller") as caller:
                assert await channel.unary_unary("/test.Echo/Say", None, None)(b"hi") == b"hi"
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    finally:
        await server.stop(None)

    finished = [span for span in spans.get_finished_spans() if span.name != "caller"]
    assert {span.name for span in finished} == {"/test.Echo/Say"}
    client = next(span for span in finished if span.kind is SpanKind.CLIENT)
    served = next(span for span in finished if span.kind is SpanKind.SERVER)
    assert client.parent is not None
    assert client.parent.span_id == caller.get_span_context().span_id
    assert served.parent is not None
    assert served.parent.span_id == client.context.span_id
    assert served.context.trace_id == caller.get_span_context().trace_id


@pytest.mark.parametrize("method", ["Write", "Yield"])
async def test_grpc_streams_are_traced_whether_they_write_or_yield(spans, method):
    server, port = await traced_echo_server()
    try:
        target = f"127.0.0.1:{port}"
        async with aio.insecure_channel(target, interceptors=grpc_client_interceptors()) as channel:
            call = channel.unary_stream(f"/test.Echo/{method}", None, None)(b"hi")
            answers = []
            while (answer := await call.read()) is not EOF:
                answers.append(answer)
            assert answers == [b"hi", b"hi"]
            assert await call.code() is grpc.StatusCode.OK
    finally:
        await server.stop(None)
    served = next(span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER)
    client = next(span for span in spans.get_finished_spans() if span.kind is SpanKind.CLIENT)
    assert served.name == f"/test.Echo/{method}"
    assert served.status.status_code is not StatusCode.ERROR
    assert served.parent is not None
    assert served.parent.span_id == client.context.span_id


async def test_sqlalchemy_statements_are_child_spans(spans):
    engine = create_async_engine("sqlite+aiosqlite://")
    instrument_engine(engine)
    try:
        with get_tracer().start_as_current_span("ai1net.usage.flush") as parent:
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()
    statement = next(span for span in spans.get_finished_spans()
                     if span.name.startswith("SELECT"))
    assert statement.parent is not None
    assert statement.parent.span_id == parent.get_span_context().span_id
