"""Tracing: the SDK set up from the ``OTEL_*`` environment, the maintained instrumentations,
and the attributes of a generate span (GenAI semantic conventions plus ``ai1net.*``).

The API allows one global TracerProvider per process, so `setup_tracing` installs a
`ReconfigurableTracerProvider` the first time and, on later calls, replaces its sampler and
span processors in place: tests call it with their own exporter as often as they like. The
resource (``service.name``) is fixed by the first call.

A provider is installed even when ``OTEL_TRACES_EXPORTER`` is ``none``, but calls then make
`light_span`s: never recorded, yet with real ids, so ``traceparent`` still reaches the providers
(in the caller's trace when it sent one) at a fraction of the SDK's cost.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grpc import aio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes, AttributeValue
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ai1net.common.tracecontext import inject

TRACER_NAME = "ai1net"
GRPC_INSTRUMENTATION = "opentelemetry.instrumentation.grpc"
GENAI_PROVIDER = "ai1net"
# Health checks and reflection would only add noise to the traces.
UNTRACED_GRPC_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                          "grpc.reflection.v1.ServerReflection")

_FIXED_SAMPLERS: Mapping[str, sampling.Sampler] = {
    "always_on": sampling.ALWAYS_ON,
    "always_off": sampling.ALWAYS_OFF,
    "parentbased_always_on": sampling.DEFAULT_ON,
    "parentbased_always_off": sampling.DEFAULT_OFF,
}
# What calls make: "off" (tracing never set up: no span, no trace context), "light" (nothing
# exported: `light_span`), "full" (spans recorded by the SDK and exported).
_mode = "off"

_RATIO_SAMPLERS: Mapping[str, Callable[[float], sampling.Sampler]] = {
    "traceidratio": sampling.TraceIdRatioBased,
    "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio,
}


# -- the provider ---------------------------------------------------------------------------


class _SamplerSwitch(sampling.Sampler):
    """Tracers keep the sampler they were made with, so the switch is what they keep."""

    def __init__(self) -> None:
        self.current: sampling.Sampler = sampling.DEFAULT_ON

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> sampling.SamplingResult:
        return self.current.should_sample(parent_context, trace_id, name, kind, attributes,
                                          links, trace_state)

    def get_description(self) -> str:
        return self.current.get_description()


class _ProcessorSwitch(SpanProcessor):
    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()

    def replace(self, processors: Sequence[SpanProcessor]) -> None:
        old, self._processors = self._processors, tuple(processors)
        for processor in old:
            processor.shutdown()

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        self.replace(())

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._processors)


class ReconfigurableTracerProvider(TracerProvider):
    """An SDK TracerProvider whose sampler and span processors can change once it is global."""

    def __init__(self, *, resource: Resource) -> None:
        self._sampler_switch = _SamplerSwitch()
        self._processor_switch = _ProcessorSwitch()
        super().__init__(sampler=self._sampler_switch, resource=resource)
        self.add_span_processor(self._processor_switch)

    def reconfigure(self, *, sampler: sampling.Sampler,
                    processors: Sequence[SpanProcessor]) -> None:
        """Use these from now on; the previous processors are flushed and shut down."""
        self._sampler_switch.current = sampler
        self._processor_switch.replace(processors)


def setup_tracing(*, service_name: str = "ai1net", environ: Mapping[str, str] | None = None,
                  exporter: SpanExporter | None = None) -> ReconfigurableTracerProvider:
    """Configure the process's tracing from ``environ`` (default ``os.environ``).

    ``exporter``, when given, replaces the exporters ``OTEL_TRACES_EXPORTER`` names and gets
    every span synchronously (tests pass an InMemorySpanExporter); the next call shuts it
    down. ``OTEL_SERVICE_NAME`` wins over ``service_name``. Invalid values raise ValueError.
    OTLP headers, TLS files, timeouts and ``OTEL_BSP_*`` are read by the SDK from the
    process environment.
    """
    env = os.environ if environ is None else environ
    processors: list[SpanProcessor] = (
        [SimpleSpanProcessor(exporter)] if exporter is not None
        else [BatchSpanProcessor(each) for each in _exporters(env)])
    # With nowhere to send spans, record only what a caller asked to sample: trace context
    # still propagates (callers' trace ids reach the provider) at a fraction of the cost.
    sampler = _sampler(env) if processors or env.get("OTEL_TRACES_SAMPLER") \
        else sampling.ParentBased(sampling.ALWAYS_OFF)
    provider = _global_provider(env.get("OTEL_SERVICE_NAME") or service_name)
    provider.reconfigure(sampler=sampler, processors=processors)
    global _mode  # the process's one tracing configuration
    _mode = "full" if processors else "light"
    return provider


def records_spans() -> bool:
    """Whether spans are exported (`setup_tracing` found an exporter)."""
    return _mode == "full"


class light_span:  # used like the context managers it stands beside
    """A span that is never recorded, made current while the block runs.

    It continues the current trace (a caller's ``traceparent``, sampled flag included) or
    starts one, with a fresh span id: what the SDK makes when it samples nothing, without
    its sampler, span object and processors. Before `setup_tracing` it is the invalid span
    and changes nothing.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> Span:
        if _mode == "off":
            self._token = None
            return INVALID_SPAN
        parent = trace.get_current_span().get_span_context()
        span_id = random.getrandbits(64) or 1
        if parent.is_valid:
            context = SpanContext(parent.trace_id, span_id, is_remote=False,
                                  trace_flags=parent.trace_flags, trace_state=parent.trace_state)
        else:
            context = SpanContext(random.getrandbits(128) or 1, span_id, is_remote=False,
                                  trace_flags=TraceFlags(TraceFlags.DEFAULT))
        span = NonRecordingSpan(context)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            otel_context.detach(self._token)


def exports_spans(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_TRACES_EXPORTER`` sends spans anywhere (otherwise none is recorded)."""
    env = os.environ if environ is None else environ
    names = {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "none").lower().split(",")}
    return bool(names - {"none", ""})


def get_tracer() -> Tracer:
    return trace.get_tracer(TRACER_NAME)


def _global_provider(name: str) -> ReconfigurableTracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, ReconfigurableTracerProvider):
        return current
    provider = ReconfigurableTracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        raise RuntimeError("another TracerProvider is already installed in this process")
    return provider


def _sampler(env: Mapping[str, str]) -> sampling.Sampler:
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name in _FIXED_SAMPLERS:
        return _FIXED_SAMPLERS[name]
    if name not in _RATIO_SAMPLERS:
        raise ValueError(f"OTEL_TRACES_SAMPLER {name!r} is not one of "
                         f"{sorted([*_FIXED_SAMPLERS, *_RATIO_SAMPLERS])}")
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip() or "1.0"
    try:
        ratio = float(raw)
    except ValueError as exc:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG must be a number, got {raw!r}") from exc
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG must be within [0, 1], got {ratio}")
    return _RATIO_SAMPLERS[name](ratio)


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in env.get("OTEL_TRACES_EXPORTER", "none").lower().split(","):
        name = name.strip()
        if name == "otlp":
            exporters.append(_otlp_exporter(env))
        elif name == "console":
            # The exporter's default is the stdout of import time; this is today's.
            exporters.append(ConsoleSpanExporter(out=sys.stdout))
        elif name not in ("none", ""):
            raise ValueError(f"OTEL_TRACES_EXPORTER {name!r} is not otlp, console or none")
    return exporters


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter:
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    signal_endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if protocol == "grpc":
        # Imported here: the exporters weigh a fifth of a second of start-up.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )
        return GrpcSpanExporter(endpoint=signal_endpoint or base or "http://localhost:4317")
    if protocol == "http/protobuf":
        base = (base or "http://localhost:4318").rstrip("/")
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )
        return HttpSpanExporter(endpoint=signal_endpoint or f"{base}/v1/traces")
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not grpc or http/protobuf")


# -- instrumentations (server/instrumentation.py, imported only when used) -----------------


def grpc_server_interceptor() -> aio.ServerInterceptor[Any, Any]:
    """Server spans continuing the caller's ``traceparent``; put it first in
    ``aio.server(interceptors=[...])`` so that everything after it is inside the span."""
    from ai1net.server import instrumentation

    return instrumentation.grpc_server_interceptor()


def grpc_client_interceptors() -> list[aio.ClientInterceptor]:
    """Client spans that send ``traceparent``; pass them to
    ``aio.insecure_channel(target, interceptors=...)``."""
    from ai1net.server import instrumentation

    return instrumentation.grpc_client_interceptors()


def instrument() -> None:
    """Trace aiohttp applications (the bridge).

    Patches aiohttp, so call it before the applications are made. Idempotent.
    """
    from ai1net.server import instrumentation

    instrumentation.instrument()


def instrument_engine(engine: AsyncEngine | Engine) -> None:
    """Trace one engine's statements; call once per engine."""
    from ai1net.server import instrumentation

    instrumentation.instrument_engine(engine)


# -- generate spans -------------------------------------------------------------------------


def operation_name(model_type: str) -> str:
    """GenAI ``gen_ai.operation.name``: one input string to text is a text completion;
    image and audio are ``generate_content`` (the convention's multimodal operation)."""
    return "text_completion" if model_type in ("", "text") else "generate_content"


def generate_span_attributes(
    *, model_type: str = "text", request_model: str = "", response_model: str = "",
    response_id: str = "", input_tokens: int | None = None, output_tokens: int | None = None,
    max_tokens: int | None = None, temperature: float | None = None,
    route_strategy: str = "", route_attempts: int | None = None, fallback: bool | None = None,
    cost_usd: float | None = None, ttft_ms: float | None = None,
) -> dict[str, AttributeValue]:
    """The attributes of an ``ai1net.generate`` span; empty and None values are left out.

    Never pass the prompt, the output or any header here.
    """
    candidates: dict[str, AttributeValue | None] = {
        "gen_ai.operation.name": operation_name(model_type),
        # gen_ai.system is the older name of gen_ai.provider.name; backends read either.
        "gen_ai.provider.name": GENAI_PROVIDER,
        "gen_ai.system": GENAI_PROVIDER,
        "gen_ai.request.model": request_model,
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": temperature,
        "ai1net.route.strategy": route_strategy,
        "ai1net.route.attempts": route_attempts,
        "ai1net.route.fallback": fallback,
        "ai1net.cost_usd": cost_usd,
        "ai1net.ttft_ms": ttft_ms,
    }
    return {key: value for key, value in candidates.items() if value is not None and value != ""}


def record_error(span: Span, error_type: str, description: str | None = None) -> None:
    """Mark a failed call: status ERROR and ``error.type`` (a low-cardinality name such as
    the domain error's class). ``description`` must be the gateway's own words, never a
    provider's body, which may quote the prompt."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description))


class provider_span:
    """The provider call's CLIENT span (HTTP semantic conventions), current while it runs so
    that `inject` names it the provider's parent. Only made when spans are recorded."""

    __slots__ = ("_manager", "_span")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        self._manager = get_tracer().start_as_current_span(
            "POST", kind=SpanKind.CLIENT, record_exception=False, attributes={
                "http.request.method": "POST", "url.full": public_url(url),
                "server.address": parts.hostname or "",
                "server.port": parts.port or (443 if tls else 80)})

    def start(self, headers: dict[str, str]) -> None:
        """Enter the span and write its trace context into the request's ``headers``."""
        self._span = self._manager.__enter__()
        inject(headers)

    def end(self, status: int, error: BaseException | None) -> None:
        if status:
            self._span.set_attribute("http.response.status_code", status)
        if error is not None:
            record_error(self._span, type(error).__name__)
        elif status >= 400:
            record_error(self._span, str(status))
        self._manager.__exit__(None, None, None)


def public_url(url: str) -> str:
    """A provider URL may carry a key in its query or user info: spans get neither."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host or ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- usage flushes ---------------------------------------------------------------------------


def call_context() -> SpanContext | None:
    """The current call's span context, to keep with its usage event (to link it from the
    recorded flush span; None when spans are not recorded)."""
    if _mode != "full":
        return None
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def usage_flush_span(calls: Iterable[SpanContext | None]) -> AbstractContextManager[Span]:
    """A span in a trace of its own, linked to the calls whose usage it writes (the SDK keeps
    the first 128 links)."""
    unique = {(call.trace_id, call.span_id): call for call in calls if call is not None}
    return get_tracer().start_as_current_span(
        "ai1net.usage.flush", context=Context(), links=[Link(call) for call in unique.values()])
