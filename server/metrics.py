"""The gateway's Prometheus metrics, in a registry of its own (never the global default).

The per-call series are counted in plain Python (the event loop is their only writer) and
turned into metric families when scraped: a call costs a few additions, not a dozen locked
updates of prometheus_client children.

Labels stay low-cardinality: ``model`` is a registered model name (after ``max_models``
distinct names the rest count as ``other``, so a flood of unknown names cannot grow the
series), ``type`` is text | image | audio, ``outcome`` a short fixed word such as ``ok`` or
the domain error's name, ``direction`` input | output. Never a key, a prompt or a credential.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypedDict, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
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


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0


class _Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # buckets hold value <= le
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: float = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            out.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
        return out


T = TypeVar("T")


@dataclass(slots=True)
class _Family(Generic[T]):
    """One family's children by label values, made on first use."""

    make: Callable[[], T]
    children: dict[tuple[str, ...], T] = field(default_factory=dict)

    def child(self, *labels: str) -> T:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.make()
        return child


@dataclass(frozen=True, slots=True)
class _CallSeries:
    """The children one (model, type, outcome) touches, bound once."""

    requests: _Count
    latency: _Histogram
    ttft: _Histogram
    input_tokens: _Count
    output_tokens: _Count
    cost: _Count


class _CallCollector(Collector):
    """Requests, latency, TTFT, overhead, tokens and cost, from the plain counts."""

    def __init__(self) -> None:
        self.requests = _Family(_Count)
        self.latency = _Family(lambda: _Histogram(LATENCY_BUCKETS))
        self.ttft = _Family(lambda: _Histogram(TTFT_BUCKETS))
        self.overhead = _Histogram(OVERHEAD_BUCKETS)
        self.tokens = _Family(_Count)
        self.cost = _Family(_Count)

    def describe(self) -> Iterator[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        def counter(name: str, doc: str, labels: list[str],
                    family: _Family[_Count]) -> CounterMetricFamily:
            metric = CounterMetricFamily(f"{NAMESPACE}_{name}", doc, labels=labels)
            for values, count in sorted(family.children.items()) if with_samples else ():
                metric.add_metric(list(values), count.value)
            return metric

        def histogram(name: str, doc: str, labels: list[str],
                      family: Mapping[tuple[str, ...], _Histogram]) -> HistogramMetricFamily:
            metric = HistogramMetricFamily(f"{NAMESPACE}_{name}", doc, labels=labels)
            for values, child in sorted(family.items()) if with_samples else ():
                metric.add_metric(list(values), child.buckets(), child.sum)
            return metric

        yield counter("requests", "Calls by model, outcome and type",
                      ["model", "outcome", "type"], self.requests)
        yield histogram("request_latency_seconds", "End-to-end call latency", ["model", "type"],
                        self.latency.children)
        yield histogram("ttft_seconds", "Time to the first token or output", ["model"],
                        self.ttft.children)
        yield histogram("overhead_seconds",
                        "The gateway's own time: total minus waiting on providers", [],
                        {(): self.overhead})
        yield counter("tokens", "Tokens by model and direction", ["model", "direction"],
                      self.tokens)
        yield counter("cost_usd", "Cost in USD by model", ["model"], self.cost)


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
        self._calls = _CallCollector()
        self.registry.register(self._calls)
        self._rate_limited = Counter("rate_limited", "Calls refused by a rate limit", **options)
        self._budget_rejected = Counter("budget_rejected", "Calls refused by a budget",
                                        **options)
        self._violations = Counter(
            "upstream_violations", "Provider answers that broke a limit or the HTTP rules, "
            "or came too late, by model and kind", ["model", "kind"], **options)
        self._shed = Counter("calls_shed", "Calls or attempts refused for load: the process's "
                             "or a model's calls in flight, or no free provider connection",
                             ["scope"], **options)
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
        series.requests.value += 1
        series.latency.observe(latency_s)
        if ttft_s is not None:
            series.ttft.observe(ttft_s)
        if overhead_s is not None:
            self._calls.overhead.observe(overhead_s)
        series.input_tokens.value += input_tokens
        series.output_tokens.value += output_tokens
        series.cost.value += cost_usd

    def upstream_violation(self, model: str, kind: str) -> None:
        label = model if model in self._models or len(self._models) < self._max_models \
            else OTHER_MODEL
        self._violations.labels(label, kind).inc()

    def shed(self, scope: str) -> None:
        self._shed.labels(scope).inc()

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
        calls = self._calls
        series = _CallSeries(
            requests=calls.requests.child(label, outcome, type),
            latency=calls.latency.child(label, type),
            ttft=calls.ttft.child(label),
            input_tokens=calls.tokens.child(label, "input"),
            output_tokens=calls.tokens.child(label, "output"),
            cost=calls.cost.child(label),
        )
        if label == model:
            self._series[(model, type, outcome)] = series
        return series
