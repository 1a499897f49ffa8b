"""What accounting and tracing cost: AI1NET HTTP throughput with each switched off.

Part of ``python -m bench.run`` (on by default, ``--no-costs`` skips it). Two more AI1NET
processes are started beside the one that served the main passes, on the same core and on
fresh SQLite files: one with ``AI1NET_ACCOUNTING=0`` (usage events are not recorded), one with
``AI1NET_TRACING=0`` (no OpenTelemetry SDK or instrumentation). The three are loaded over HTTP
at the configured concurrency in interleaved rounds (the order rotates each round, so no
variant always follows the same one); each variant keeps its median round.

A feature's cost is the share of throughput lost by having it on::

    cost = 1 - median req/s (default) / median req/s (feature off)

so "accounting costs 8%" means AI1NET with accounting serves 8% fewer requests/s than
without. The per-round ratios (a default pass against the variant's pass of the same round)
and their median are kept too: when they disagree with the ratio of medians, the passes were
noisy and more rounds (``--costs-rounds``) are needed.
"""

from __future__ import annotations

import secrets
import statistics
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import gateway
from bench.passes import Bench, Target, median_round
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
    return len(VARIANTS) - 1 + len(VARIANTS) * rounds


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
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    scenarios: dict[str, dict[str, Any]] = {}
    with ExitStack() as stack:
        systems = {DEFAULT: (default, default_service),
                   **start_variants(stack, bench, mock, mock_url, log_dir)}
        names = list(VARIANTS)
        for number in range(rounds_wanted):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                rounds[name].append(bench.throughput(f"{name} round {number + 1}",
                                                     systems[name][0]))
        for name in names:
            scenarios[name] = {"throughput": median_round(rounds[name]),
                               "throughput_rounds_rps": rps_list(rounds[name]),
                               "rss_mib": systems[name][1].peak_rss_mib()}
    return scenarios, summarize(rounds)


def rps_list(rounds: list[dict[str, Any]]) -> list[float | None]:
    return [r.get("summary", {}).get("rps") for r in rounds]


def median_rps(rounds: list[dict[str, Any]]) -> float | None:
    rates = [rate for rate in rps_list(rounds) if rate]
    return statistics.median(rates) if rates else None


def cost(on: float | None, off: float | None) -> float | None:
    return None if on is None or not off else 1 - on / off


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {name: median_rps(passes) for name, passes in rounds.items()}
    summary: dict[str, Any] = {"rounds": len(rounds[DEFAULT]), "median_rps": medians,
                               "definition": "1 - median req/s (default) / median req/s "
                                             "(feature off)"}
    base = rps_list(rounds[DEFAULT])
    for feature, variant in FEATURES.items():
        summary[feature] = cost(medians[DEFAULT], medians[variant])
        paired = [cost(on, off) for on, off in zip(base, rps_list(rounds[variant]), strict=True)]
        summary[f"{feature}_per_round"] = paired
        known = [value for value in paired if value is not None]
        summary[f"{feature}_paired_median"] = statistics.median(known) if known else None
    return summary


def describe(costs: dict[str, Any]) -> list[str]:
    """The two sentences of the report, with what they come from."""
    medians, lines = costs["median_rps"], []
    for feature, label in (("accounting", "accounting"), ("tracing", "tracing (sampled off)")):
        value, off = costs.get(feature), medians.get(FEATURES[feature])
        if value is None:
            lines.append(f"{label}: not measured (a pass failed)")
            continue
        rounds = ", ".join("—" if r is None else f"{r:.1%}"
                           for r in costs.get(f"{feature}_per_round", []))
        paired = costs.get(f"{feature}_paired_median")
        lines.append(f"{label} costs {value:.1%} of throughput (target ≤ 10%): "
                     f"{medians[DEFAULT]:,.0f} req/s on vs {off:,.0f} off, medians of "
                     f"{costs['rounds']} interleaved rounds; per round: {rounds}"
                     + ("" if paired is None else f" (their median {paired:.1%})"))
    return lines
