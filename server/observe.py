"""What is said about each call besides its answer: its span, its metrics, its log line.

The Generator opens ``call_span`` around a call (so the provider's HTTP span nests in
it) and reports the end through ``ended`` — exactly once, from its accounting.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from opentelemetry.trace import Span

from ai1net.server.accesslog import log_call
from ai1net.server.errors import (
    BudgetExceeded,
    GatewayError,
    Overloaded,
    RateLimited,
    UpstreamRateLimited,
)
from ai1net.server.metrics import Metrics
from ai1net.server.telemetry import (
    NO_SPAN,
    LightSpan,
    TraceMode,
    generate_span_attributes,
    get_tracer,
    record_error,
)


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class CallReport:
    """One finished call, as the observer needs it (no prompt, no output, no key)."""

    method: str
    request_id: str
    requested_model: str
    model: str
    model_type: str
    outcome: str
    error_type: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    ttft_ms: float
    overhead_ms: float
    attempts: int
    strategy: str
    parameters: Mapping[str, Any]


class Observer:
    def __init__(self, *, metrics: Metrics | None = None,
                 tracing: TraceMode = TraceMode.OFF) -> None:
        self._metrics = metrics
        self._tracer = get_tracer()
        self._tracing = tracing

    def call_span(self, method: str) -> _CallSpan:
        """The ``ai1net.generate`` span (a light one unless spans are exported); counts
        rejections by limits and budgets."""
        return _CallSpan(self, method)

    def route_span(self, parent: Span) -> AbstractContextManager[object]:
        """The routing span, under a recorded call span; unrecorded calls skip it (the
        provider's traceparent then names the call span, of the same trace)."""
        if not parent.is_recording():
            return _NOTHING
        return self._tracer.start_as_current_span("ai1net.route")

    def ended(self, report: CallReport, span: Span | None) -> None:
        if span is not None and span.is_recording():
            span.set_attributes(_attributes(report))
            if report.outcome != "ok":
                record_error(span, report.error_type or report.outcome)
        if self._metrics is not None:
            self._metrics.observe_call(
                model=report.model, type=report.model_type, outcome=report.outcome,
                latency_s=report.latency_ms / 1000,
                ttft_s=report.ttft_ms / 1000 if report.outcome == "ok" else None,
                overhead_s=report.overhead_ms / 1000, input_tokens=report.input_tokens,
                output_tokens=report.output_tokens, cost_usd=report.cost_usd)
        log_call(request_id=report.request_id, method=report.method, model=report.model,
                 outcome=report.outcome, latency_ms=report.latency_ms,
                 input_tokens=report.input_tokens, output_tokens=report.output_tokens,
                 cost_usd=report.cost_usd, overhead_ms=report.overhead_ms, span=span)

    def violation(self, model: str, kind: str) -> None:
        """A provider broke a limit or a rule of the HTTP exchange (or timed out)."""
        if self._metrics is not None:
            self._metrics.upstream_violation(model, kind)

    def probed(self, model: str, *, passed: bool) -> None:
        """A health probe of ``model`` ended (probes.py)."""
        if self._metrics is not None:
            self._metrics.health_probe(model, passed=passed)

    def shed(self, scope: str) -> None:
        """A call (or an attempt) the gateway refused for load: ``process``, ``model`` or
        ``pool``."""
        if self._metrics is not None:
            self._metrics.shed(scope)

    def rejected(self, error: GatewayError, span: Span) -> None:
        if isinstance(error, BudgetExceeded):
            record_error(span, error.reason)
            if self._metrics is not None:
                self._metrics.budget_rejected()
        elif isinstance(error, Overloaded) and error.scope == "process":
            record_error(span, error.reason)
            self.shed("process")
        elif isinstance(error, RateLimited) and not isinstance(error, UpstreamRateLimited):
            record_error(span, error.reason)
            if self._metrics is not None:
                self._metrics.rate_limited()


_NOTHING = nullcontext()  # reusable: it holds nothing


class _CallSpan:
    """`Observer.call_span`: the SDK's span when spans are exported, else a `LightSpan`
    (none when tracing is off)."""

    __slots__ = ("_inner", "_method", "_observer", "_span")

    def __init__(self, observer: Observer, method: str) -> None:
        self._observer = observer
        self._method = method
        tracing = observer._tracing
        self._inner: AbstractContextManager[Span] = observer._tracer.start_as_current_span(
            "ai1net.generate", record_exception=False, set_status_on_exception=False) \
            if tracing is TraceMode.FULL else LightSpan() if tracing is TraceMode.LIGHT \
            else NO_SPAN

    def __enter__(self) -> Span:
        self._span = self._inner.__enter__()
        if self._span.is_recording():
            self._span.set_attribute("rpc.method", self._method)
        return self._span

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if isinstance(error, GatewayError):
            self._observer.rejected(error, self._span)  # while the span is still open
        self._inner.__exit__(kind, error, tb)


def _attributes(report: CallReport) -> dict[str, Any]:
    max_tokens = report.parameters.get("max_tokens")
    temperature = report.parameters.get("temperature")
    return generate_span_attributes(
        model_type=report.model_type, request_model=report.requested_model,
        response_model=report.model, input_tokens=report.input_tokens,
        output_tokens=report.output_tokens,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        route_strategy=report.strategy, route_attempts=report.attempts,
        fallback=report.attempts > 1, cost_usd=report.cost_usd, ttft_ms=report.ttft_ms)
