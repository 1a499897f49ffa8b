"""The gateway's Prometheus metrics, in a registry of its own (never the global default).

The per-call series are counted in plain Python (the event loop is their only writer) and
turned into metric families when scraped: a call costs a few additions, not a dozen locked
updates of prometheus_client children.

Labels stay low-cardinality: ``model`` is a registered model name (after ``max_models``
distinct names the rest count as ``other``, so a flood of unknown names cannot grow the
series), ``type`` is text | image | audio, ``outcome`` a short fixed word such as ``ok`` or
the domain error's name, ``direction`` input | output. Never a key, a prompt or a credential.

With several workers (``serve --workers N``) each one also writes its counters and
histograms through to memory-mapped files of its own in a shared directory, in
prometheus_client's multiprocess layout, and a scrape of any worker sums every worker's
files (a worker that exited keeps its file, so no counter goes backwards). The gauges
(circuit state, usage buffer) are the scraped worker's own.
"""

from __future__ import annotations

import math
import os
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypedDict, TypeVar

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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

    def add(self, amount: float) -> None:
        self.value += amount


class _Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> int:
        """Count ``value``; the index of its bucket."""
        index = bisect_left(self.bounds, value)  # buckets hold value <= le
        self.counts[index] += 1
        self.sum += value
        return index

    def buckets(self) -> list[tuple[str, float]]:
        cumulative: float = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            cumulative += count
            out.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
        return out


class _SharedCount(_Count):
    """A count written through to this process's file in the shared directory."""

    __slots__ = ("_file", "_key")

    def __init__(self, file: MmapedDict, key: str) -> None:
        super().__init__()
        self._file = file
        self._key = key

    def add(self, amount: float) -> None:
        self.value += amount
        self._file.write_value(self._key, self.value, 0.0)


class _SharedHistogram(_Histogram):
    """Buckets (not cumulative, as prometheus_client stores them) and sum, written through."""

    __slots__ = ("_bucket_keys", "_file", "_sum_key")

    def __init__(self, file: MmapedDict, metric: str, doc: str, labelnames: tuple[str, ...],
                 labels: tuple[str, ...], bounds: tuple[float, ...]) -> None:
        super().__init__(bounds)
        self._file = file
        self._bucket_keys = [
            mmap_key(metric, f"{metric}_bucket", [*labelnames, "le"],
                     [*labels, floatToGoString(bound)], doc) for bound in (*bounds, math.inf)]
        self._sum_key = mmap_key(metric, f"{metric}_sum", list(labelnames), list(labels), doc)

    def observe(self, value: float) -> int:
        index = super().observe(value)
        self._file.write_value(self._bucket_keys[index], self.counts[index], 0.0)
        self._file.write_value(self._sum_key, self.sum, 0.0)
        return index


Labels = tuple[str, ...]


class _Values:
    """Makes the counts and histograms: in process, or written through to a shared
    directory (``directory``) for the scrapes of every worker to sum."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory
        self._files: dict[str, MmapedDict] = {}

    def _file(self, kind: str) -> MmapedDict:
        if kind not in self._files:
            assert self.directory is not None
            self._files[kind] = MmapedDict(
                os.path.join(self.directory, f"{kind}_{os.getpid()}.db"))
        return self._files[kind]

    def count(self, name: str, doc: str, labelnames: Labels) -> Callable[[Labels], _Count]:
        if self.directory is None:
            return lambda _labels: _Count()
        metric = f"{NAMESPACE}_{name}"
        return lambda labels: _SharedCount(self._file("counter"), mmap_key(
            metric, f"{metric}_total", list(labelnames), list(labels), doc))

    def histogram(self, name: str, doc: str, labelnames: Labels,
                  bounds: tuple[float, ...]) -> Callable[[Labels], _Histogram]:
        if self.directory is None:
            return lambda _labels: _Histogram(bounds)
        metric = f"{NAMESPACE}_{name}"
        return lambda labels: _SharedHistogram(self._file("histogram"), metric, doc,
                                               labelnames, labels, bounds)


T = TypeVar("T")


@dataclass(slots=True)
class _Family(Generic[T]):
    """One family's children by label values, made on first use."""

    make: Callable[[Labels], T]
    children: dict[Labels, T] = field(default_factory=dict)

    def child(self, *labels: str) -> T:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.make(labels)
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


# name, help, label names (and buckets for histograms): one list for the values and the text.
_COUNTERS = {
    "requests": ("Calls by model, outcome and type", ("model", "outcome", "type")),
    "tokens": ("Tokens by model and direction", ("model", "direction")),
    "cost_usd": ("Cost in USD by model", ("model",)),
    "rate_limited": ("Calls refused by a rate limit", ()),
    "budget_rejected": ("Calls refused by a budget", ()),
    "upstream_violations": ("Provider answers that broke a limit or the HTTP rules, or came "
                            "too late, by model and kind", ("model", "kind")),
    "calls_shed": ("Calls or attempts refused for load: the process's or a model's calls in "
                   "flight, or no free provider connection", ("scope",)),
    "health_probes": ("Probes of models' health_url, by model and result (pass or fail)",
                      ("model", "result")),
}
_HISTOGRAMS = {
    "request_latency_seconds": ("End-to-end call latency", ("model", "type"), LATENCY_BUCKETS),
    "ttft_seconds": ("Time to the first token or output", ("model",), TTFT_BUCKETS),
    "overhead_seconds": ("The gateway's own time: total minus waiting on providers", (),
                         OVERHEAD_BUCKETS),
}


class _CallCollector(Collector):
    """Requests, latency, TTFT, overhead, tokens, cost and rejections, from the plain counts."""

    def __init__(self, values: _Values) -> None:
        self.counters = {name: _Family(values.count(name, doc, labels))
                         for name, (doc, labels) in _COUNTERS.items()}
        self.histograms = {name: _Family(values.histogram(name, doc, labels, bounds))
                           for name, (doc, labels, bounds) in _HISTOGRAMS.items()}
        self.requests = self.counters["requests"]
        self.tokens = self.counters["tokens"]
        self.cost = self.counters["cost_usd"]
        self.latency = self.histograms["request_latency_seconds"]
        self.ttft = self.histograms["ttft_seconds"]
        self.overhead = self.histograms["overhead_seconds"].child()
        self.rate_limited = self.counters["rate_limited"].child()
        self.budget_rejected = self.counters["budget_rejected"].child()

    def describe(self) -> Iterator[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        for name, (doc, labels) in _COUNTERS.items():
            counter = CounterMetricFamily(f"{NAMESPACE}_{name}", doc, labels=list(labels))
            for values, count in sorted(self.counters[name].children.items()) \
                    if with_samples else ():
                counter.add_metric(list(values), count.value)
            yield counter
        for name, (doc, labels, _bounds) in _HISTOGRAMS.items():
            histogram = HistogramMetricFamily(f"{NAMESPACE}_{name}", doc, labels=list(labels))
            for values, child in sorted(self.histograms[name].children.items()) \
                    if with_samples else ():
                histogram.add_metric(list(values), child.buckets(), child.sum)
            yield histogram


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


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What the shared quota says of itself (read at scrape time)."""

    degraded: bool  # Redis away: limits and budgets are per-process shares
    replicas: int  # replicas seen by their heartbeats
    local_admissions: int  # calls admitted by per-process shares, ever


class _QuotaCollector(Collector):
    def __init__(self, status: Callable[[], QuotaStatus]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        yield GaugeMetricFamily(f"{NAMESPACE}_quota_degraded",
                                "1 while Redis is away and rate limits and budgets are "
                                "per-process shares", value=int(status.degraded))
        yield GaugeMetricFamily(f"{NAMESPACE}_quota_replicas_seen",
                                "Replicas alive by their Redis heartbeats (last count known)",
                                value=status.replicas)
        yield CounterMetricFamily(f"{NAMESPACE}_quota_local_admissions",
                                  "Calls admitted by per-process shares while Redis was away",
                                  value=status.local_admissions)


class Metrics:
    def __init__(self, *, registry: CollectorRegistry | None = None,
                 max_models: int = 1000, shared_dir: str | None = None) -> None:
        """``shared_dir``: the directory every worker writes its counts to and sums at
        scrape time (None: this process alone)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self._values = _Values(shared_dir)
        self._max_models = max_models
        self._models: set[str] = set()
        self._series: dict[tuple[str, str, str], _CallSeries] = {}
        self.circuit_states: Callable[[], Mapping[str, int]] = dict
        self.usage_buffer_depth: Callable[[], float] = lambda: 0
        self._declare()

    def _declare(self) -> None:
        options = _Options(namespace=NAMESPACE, registry=self.registry)
        self._calls = _CallCollector(self._values)
        if self._values.directory is None:
            self.registry.register(self._calls)
        else:
            MultiProcessCollector(self.registry, path=self._values.directory)
        depth = Gauge("usage_buffer_depth", "Usage events waiting to be written", **options)
        depth.set_function(lambda: self.usage_buffer_depth())
        self.registry.register(_CircuitCollector(self))

    def watch_circuits(self, states: Callable[[], Mapping[str, int]]) -> None:
        """``states()`` maps each model to a `CircuitState`; it is read at scrape time."""
        self.circuit_states = states

    def watch_quota(self, status: Callable[[], QuotaStatus]) -> None:
        """The shared quota's state, read at scrape time (only with Redis)."""
        self.registry.register(_QuotaCollector(status))

    def watch_usage_buffer(self, depth: Callable[[], float]) -> None:
        """``depth()`` is read at scrape time."""
        self.usage_buffer_depth = depth

    def observe_call(self, *, model: str, type: str, outcome: str, latency_s: float,
                     ttft_s: float | None = None, overhead_s: float | None = None,
                     input_tokens: int = 0, output_tokens: int = 0,
                     cost_usd: float = 0.0) -> None:
        """One finished call, successful or not."""
        series = self._series.get((model, type, outcome)) or self._bind(model, type, outcome)
        series.requests.add(1)
        series.latency.observe(latency_s)
        if ttft_s is not None:
            series.ttft.observe(ttft_s)
        if overhead_s is not None:
            self._calls.overhead.observe(overhead_s)
        if input_tokens:
            series.input_tokens.add(input_tokens)
        if output_tokens:
            series.output_tokens.add(output_tokens)
        if cost_usd:
            series.cost.add(cost_usd)

    def upstream_violation(self, model: str, kind: str) -> None:
        label = model if model in self._models or len(self._models) < self._max_models \
            else OTHER_MODEL
        self._calls.counters["upstream_violations"].child(label, kind).add(1)

    def health_probe(self, model: str, *, passed: bool) -> None:
        label = model if model in self._models or len(self._models) < self._max_models \
            else OTHER_MODEL
        self._calls.counters["health_probes"].child(label, "pass" if passed else "fail").add(1)

    def shed(self, scope: str) -> None:
        self._calls.counters["calls_shed"].child(scope).add(1)

    def rate_limited(self) -> None:
        self._calls.rate_limited.add(1)

    def budget_rejected(self) -> None:
        self._calls.budget_rejected.add(1)

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
