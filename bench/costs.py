"""What accounting and tracing cost: AI1NET HTTP throughput with each switched off.

Part of ``python -m bench.run`` (on by default, ``--no-costs`` skips it). Two more AI1NET
processes are started beside the one that served the main passes, on the same core and on
fresh SQLite files: one with ``AI1NET_ACCOUNTING=0`` (usage events are not recorded), one with
``AI1NET_TRACING=0`` (no OpenTelemetry SDK or instrumentation): benchmark switches, read by
``ai1net serve`` apart from its settings (server/benchswitches.py). Each variant is loaded over
HTTP at the same time as the default one, the two sharing their core (``Bench.together``), in
``--costs-rounds`` rounds.

A feature's cost is the share of the default's CPU per call that the feature takes::

    cost = 1 - CPU per call (feature off) / CPU per call (default)

which is the share of throughput lost by having it on, on a core of its own: "accounting
costs 8%" means AI1NET with accounting serves 8% fewer requests/s than without. Each round
gives one cost; the median is kept. Measured side by side, a pass that the shared machine
slows down slows both variants alike.
"""

from __future__ import annotations

import secrets
import statistics
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import gateway
from bench.passes import Bench, Target, cpu_per_call, median_round
from bench.procs import Service

DEFAULT = "cost-default"
VARIANTS: dict[str, dict[str, str]] = {
    DEFAULT: {},
    "cost-no-accounting": {"AI1NET_ACCOUNTING": "0"},
    "cost-no-tracing": {"AI1NET_TRACING": "0"},
}
FEATURES = {"accounting": "cost-no-accounting", "tracing": "cost-no-tracing"}


def steps(rounds: int) -> int:
    """Progress steps of the phase: the start-ups of the variants, then the passes."""
    return len(VARIANTS) - 1 + len(FEATURES) * rounds


def start_variants(stack: ExitStack, bench: Bench, mock: Service, mock_url: str,
                   log_dir: Path) -> dict[str, tuple[Target, Service]]:
    started: dict[str, tuple[Target, Service]] = {}
    for name, switches in VARIANTS.items():
        if not switches:
            continue
        settings = " ".join(f"{key}={value}" for key, value in switches.items())
        bench.progress.start(f"AI1NET start-up ({settings})", 0)
        admin_key = secrets.token_urlsafe(24)
        variant = gateway.start(admin_key=admin_key, log_dir=log_dir, name=f"ai1net-{name}",
                                extra_env={**bench.options.ai1net_env, **switches})
        stack.callback(variant.stop)
        key = variant.prepare(admin_key, mock_url)
        bench.progress.done(f"ready in {variant.startup_s:.2f} s")
        target = Target("http", f"{variant.http_url}/v1/generate", key=key,
                        watch={"mock": mock, "sut": variant.service})
        started[name] = (target, variant.service)
    return started


def measure(bench: Bench, default: Target, default_service: Service, mock: Service,
            mock_url: str, log_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scenarios to add to the run's, the ``costs`` summary). ``default`` is the AI1NET
    that served the main passes; the variants are stopped before this returns."""
    rounds_wanted = max(1, bench.options.costs_rounds)
    passes: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    per_round: dict[str, list[float | None]] = {feature: [] for feature in FEATURES}
    scenarios: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        systems = {DEFAULT: (default, default_service),
                   **start_variants(stack, bench, mock, mock_url, log_dir)}
        for number in range(1, rounds_wanted + 1):
            for feature, variant in FEATURES.items():
                results = bench.together(f"{DEFAULT} with {variant} round {number}", {
                    DEFAULT: systems[DEFAULT][0], variant: systems[variant][0]})
                passes[DEFAULT].append(results[DEFAULT])
                passes[variant].append(results[variant])
                per_round[feature].append(cost(results[DEFAULT], results[variant]))
        for name in VARIANTS:
            scenarios[name] = {"throughput": median_round(passes[name]),
                               "throughput_rounds_rps": rps_list(passes[name]),
                               "rss_mib": systems[name][1].peak_rss_mib()}
    return scenarios, summarize(passes, per_round)


def rps_list(rounds: list[dict[str, Any]]) -> list[float | None]:
    return [r.get("summary", {}).get("rps") for r in rounds]


def cost(on: dict[str, Any], off: dict[str, Any]) -> float | None:
    """1 - CPU per call with the feature off / with it on (None if a pass failed)."""
    if "summary" not in on or "summary" not in off:
        return None
    on_us, off_us = cpu_per_call(on), cpu_per_call(off)
    return 1 - off_us / on_us if on_us and off_us else None


def summarize(passes: dict[str, list[dict[str, Any]]],
              per_round: dict[str, list[float | None]]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "rounds": len(next(iter(per_round.values()))),
        "cpu_us_per_call": {name: [cpu_per_call(p) if "summary" in p else None
                                   for p in results] for name, results in passes.items()},
        "definition": "1 - CPU per call (feature off) / CPU per call (default), measured "
                      "side by side; median of the rounds"}
    for feature, costs in per_round.items():
        known = [value for value in costs if value is not None]
        summary[feature] = statistics.median(known) if known else None
        summary[f"{feature}_per_round"] = costs
    return summary


def describe(costs: dict[str, Any]) -> list[str]:
    """The two sentences of the report, with what they come from."""
    lines = []
    for feature, label in (("accounting", "accounting"), ("tracing", "tracing (sampled off)")):
        value = costs.get(feature)
        if value is None:
            lines.append(f"{label}: not measured (a pass failed)")
            continue
        rounds = ", ".join("—" if r is None else f"{r:.1%}"
                           for r in costs.get(f"{feature}_per_round", []))
        lines.append(f"{label} costs {value:.1%} of throughput (target ≤ 10%): median of "
                     f"{costs['rounds']} rounds side by side with {FEATURES[feature]}; "
                     f"per round: {rounds}")
    return lines
