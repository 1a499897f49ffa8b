"""The gateway's Prometheus metrics, in a registry of its own (never the global default).

Labels stay low-cardinality: ``model`` is a registered model name (after ``max_models``
distinct names the rest count as ``other``, so a flood of unknown names cannot grow the
series), ``type`` is text | image | audio, ``outcome`` a short fixed word such as ``ok`` or
the domain error's name, ``direction`` input | output. Never a key, a prompt or a credential.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TypedDict

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

NAMESPACE = "ai1net"
OTHER_MODEL = "other"
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class _Options(TypedDict):
    namespace: str
    registry: CollectorRegistry


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class _CallSeries:
    """The children one (model, type, outcome) touches, bound once."""

    requests: Counter
    latency: Histogram
    ttft: Histogram
    input_tokens: Counter
    output_tokens: Counter
    cost: Counter


class _CircuitCollector(Collector):
    """Reads the breakers' states at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for model, state in sorted(self._metrics.circuit_states().items()):
            family.add_metric([model], int(state))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{NAMESPACE}_circuit_state",
                                 "Circuit breaker per model: 0 closed, 1 half-open, 2 open",
                                 labels=["model"])


class Metrics:
    def __init__(self, *, registry: CollectorRegistry | None = None,
                 max_models: int = 1000) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._max_models = max_models
        self._models: set[str] = set()
        self._series: dict[tuple[str, str, str], _CallSeries] = {}
        self.circuit_states: Callable[[], Mapping[str, int]] = dict
        self.usage_buffer_depth: Callable[[], float] = lambda: 0
        self._declare()

    def _declare(self) -> None:
        options = _Options(namespace=NAMESPACE, registry=self.registry)
        self._requests = Counter("requests", "Calls by model, outcome and type",
                                 ["model", "outcome", "type"], **options)
        self._latency = Histogram("request_latency_seconds", "End-to-end call latency",
                                  ["model", "type"], buckets=LATENCY_BUCKETS, **options)
        self._ttft = Histogram("ttft_seconds", "Time to the first token or output",
                               ["model"], buckets=TTFT_BUCKETS, **options)
        self._overhead = Histogram("overhead_seconds",
                                   "The gateway's own time: total minus waiting on providers",
                                   buckets=OVERHEAD_BUCKETS, **options)
        self._tokens = Counter("tokens", "Tokens by model and direction",
                               ["model", "direction"], **options)
        self._cost = Counter("cost_usd", "Cost in USD by model", ["model"], **options)
        self._rate_limited = Counter("rate_limited", "Calls refused by a rate limit", **options)
        self._budget_rejected = Counter("budget_rejected", "Calls refused by a budget",
                                        **options)
        depth = Gauge("usage_buffer_depth", "Usage events waiting to be written", **options)
        depth.set_function(lambda: self.usage_buffer_depth())
        self.registry.register(_CircuitCollector(self))

    def watch_circuits(self, states: Callable[[], Mapping[str, int]]) -> None:
        """``states()`` maps each model to a `CircuitState`; it is read at scrape time."""
        self.circuit_states = states

    def watch_usage_buffer(self, depth: Callable[[], float]) -> None:
        """``depth()`` is read at scrape time."""
        self.usage_buffer_depth = depth

    def observe_call(self, *, model: str, type: str, outcome: str, latency_s: float,
                     ttft_s: float | None = None, overhead_s: float | None = None,
                     input_tokens: int = 0, output_tokens: int = 0,
                     cost_usd: float = 0.0) -> None:
        """One finished call, successful or not."""
        series = self._series.get((model, type, outcome)) or self._bind(model, type, outcome)
        series.requests.inc()
        series.latency.observe(latency_s)
        if ttft_s is not None:
            series.ttft.observe(ttft_s)
        if overhead_s is not None:
            self._overhead.observe(overhead_s)
        if input_tokens > 0:
            series.input_tokens.inc(input_tokens)
        if output_tokens > 0:
            series.output_tokens.inc(output_tokens)
        if cost_usd > 0:
            series.cost.inc(cost_usd)

    def rate_limited(self) -> None:
        self._rate_limited.inc()

    def budget_rejected(self) -> None:
        self._budget_rejected.inc()

    def _bind(self, model: str, type: str, outcome: str) -> _CallSeries:
        label = model
        if model not in self._models:
            if len(self._models) >= self._max_models:
                label = OTHER_MODEL
            else:
                self._models.add(model)
        series = _CallSeries(
            requests=self._requests.labels(model=label, outcome=outcome, type=type),
            latency=self._latency.labels(model=label, type=type),
            ttft=self._ttft.labels(model=label),
            input_tokens=self._tokens.labels(model=label, direction="input"),
            output_tokens=self._tokens.labels(model=label, direction="output"),
            cost=self._cost.labels(model=label),
        )
        if label == model:
            self._series[(model, type, outcome)] = series
        return series
