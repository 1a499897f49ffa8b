"""Metrics: counters move, and the exposition parses as Prometheus text."""

from __future__ import annotations

import prometheus_client
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ai1net.server.metrics import CircuitState, Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: Metrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_calls_move_the_counters_and_histograms():
    metrics = Metrics()
    metrics.observe_call(model="m1", type="text", outcome="ok", latency_s=0.2, ttft_s=0.05,
                         overhead_s=0.002, input_tokens=10, output_tokens=30, cost_usd=0.0015)
    metrics.observe_call(model="m1", type="text", outcome="ok", latency_s=0.4, ttft_s=0.1,
                         overhead_s=0.001, input_tokens=5, output_tokens=7, cost_usd=0.0005)
    metrics.observe_call(model="m1", type="text", outcome="Unavailable", latency_s=1.5)

    samples = scrape(metrics)
    assert value(samples, "ai1net_requests_total", model="m1", outcome="ok", type="text") == 2
    assert value(samples, "ai1net_requests_total", model="m1", outcome="Unavailable",
                 type="text") == 1
    assert value(samples, "ai1net_request_latency_seconds_count", model="m1", type="text") == 3
    assert abs(value(samples, "ai1net_request_latency_seconds_sum", model="m1",
                     type="text") - 2.1) < 1e-9
    assert value(samples, "ai1net_request_latency_seconds_bucket", model="m1", type="text",
                 le="0.25") == 1
    assert value(samples, "ai1net_ttft_seconds_count", model="m1") == 2
    assert value(samples, "ai1net_overhead_seconds_count") == 2
    assert value(samples, "ai1net_overhead_seconds_bucket", le="0.001") == 1
    assert value(samples, "ai1net_tokens_total", model="m1", direction="input") == 15
    assert value(samples, "ai1net_tokens_total", model="m1", direction="output") == 37
    assert abs(value(samples, "ai1net_cost_usd_total", model="m1") - 0.002) < 1e-12


def test_rejections_count():
    metrics = Metrics()
    metrics.rate_limited()
    metrics.rate_limited()
    metrics.budget_rejected()
    samples = scrape(metrics)
    assert value(samples, "ai1net_rate_limited_total") == 2
    assert value(samples, "ai1net_budget_rejected_total") == 1


def test_circuit_states_and_buffer_depth_are_read_at_scrape_time():
    metrics = Metrics()
    states = {"a": CircuitState.CLOSED, "b": CircuitState.OPEN}
    depth = [3]
    metrics.watch_circuits(lambda: states)
    metrics.watch_usage_buffer(lambda: depth[0])
    samples = scrape(metrics)
    assert value(samples, "ai1net_circuit_state", model="a") == 0
    assert value(samples, "ai1net_circuit_state", model="b") == 2
    assert value(samples, "ai1net_usage_buffer_depth") == 3

    states["b"] = CircuitState.HALF_OPEN
    depth[0] = 0
    samples = scrape(metrics)
    assert value(samples, "ai1net_circuit_state", model="b") == 1
    assert value(samples, "ai1net_usage_buffer_depth") == 0


def test_unwatched_gauges_are_empty_and_zero():
    samples = scrape(Metrics())
    assert not [key for key in samples if key[0] == "ai1net_circuit_state"]
    assert value(samples, "ai1net_usage_buffer_depth") == 0


def test_models_past_the_cap_count_as_other():
    metrics = Metrics(max_models=2)
    for model in ("a", "b", "c", "d", "a"):
        metrics.observe_call(model=model, type="text", outcome="ok", latency_s=0.1)
    samples = scrape(metrics)
    assert value(samples, "ai1net_requests_total", model="a", outcome="ok", type="text") == 2
    assert value(samples, "ai1net_requests_total", model="other", outcome="ok", type="text") == 2
    models = {dict(labels).get("model") for name, labels in samples
              if name == "ai1net_requests_total"}
    assert models == {"a", "b", "other"}


def test_each_instance_has_its_own_registry_and_not_the_global_one():
    first, second = Metrics(), Metrics()
    first.observe_call(model="m", type="image", outcome="ok", latency_s=1.0)
    assert value(scrape(first), "ai1net_requests_total", model="m", outcome="ok",
                 type="image") == 1
    assert ("ai1net_requests_total", frozenset({("model", "m"), ("outcome", "ok"),
                                                ("type", "image")})) not in scrape(second)
    assert b"ai1net_" not in generate_latest(prometheus_client.REGISTRY)
