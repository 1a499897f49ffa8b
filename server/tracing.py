"""Tracing set-up: the OpenTelemetry SDK configured from the ``OTEL_*`` environment.

The API allows one global TracerProvider per process, so `setup_tracing` installs a
`ReconfigurableTracerProvider` the first time and, on later calls, replaces its sampler and
span processors in place: tests call it with their own exporter as often as they like. The
resource (``service.name``) is fixed by the first call.

A provider is installed even when ``OTEL_TRACES_EXPORTER`` is ``none``; its ``mode`` is then
`TraceMode.LIGHT` and calls make light spans (``telemetry``): never recorded, yet with real
ids, so ``traceparent`` still reaches the providers at a fraction of the SDK's cost. The mode
is passed to what makes spans (``build_gateway(tracing=...)``), never kept in a global.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

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
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from ai1net.server.telemetry import TraceMode

__all__ = ["ReconfigurableTracerProvider", "exports_spans", "setup_tracing"]

_FIXED_SAMPLERS: Mapping[str, sampling.Sampler] = {
    "always_on": sampling.ALWAYS_ON,
    "always_off": sampling.ALWAYS_OFF,
    "parentbased_always_on": sampling.DEFAULT_ON,
    "parentbased_always_off": sampling.DEFAULT_OFF,
}
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
        self.mode = TraceMode.OFF  # what calls make under this configuration
        self._sampler_switch = _SamplerSwitch()
        self._processor_switch = _ProcessorSwitch()
        super().__init__(sampler=self._sampler_switch, resource=resource)
        self.add_span_processor(self._processor_switch)

    def reconfigure(self, *, sampler: sampling.Sampler,
                    processors: Sequence[SpanProcessor]) -> None:
        """Use these from now on; the previous processors are flushed and shut down."""
        self._sampler_switch.current = sampler
        self._processor_switch.replace(processors)
        self.mode = TraceMode.FULL if processors else TraceMode.LIGHT


def setup_tracing(*, service_name: str = "ai1net", environ: Mapping[str, str] | None = None,
                  exporter: SpanExporter | None = None) -> ReconfigurableTracerProvider:
    """Configure the process's tracing from ``environ`` (default ``os.environ``); the
    provider's ``mode`` tells what calls should make now (pass it to `build_gateway`).

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
    return provider


def exports_spans(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``OTEL_TRACES_EXPORTER`` sends spans anywhere (otherwise none is recorded)."""
    env = os.environ if environ is None else environ
    names = {n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "none").lower().split(",")}
    return bool(names - {"none", ""})


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
