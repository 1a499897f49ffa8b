"""``python -m bench.run`` (``make bench``): AI1NET against a direct call and the bare proxies.

Layout on a 2-core machine (taskset where it exists): the mock provider and the load generator
share core 0; the systems under test (both bare proxies and AI1NET, started once) wait on core
1, and only one of them is loaded at a time. For the direct baseline there is no system under
test, so its load generator takes core 1. Each pass has a warm-up that is not counted; with
``--rounds N`` the throughput passes run N times, interleaved, and the median is kept.

This machine is shared, and throughput drifts by ±20% from one pass to the next. So the
ratios to the bare proxies are also measured *paired* (``--pair-rounds``): the bare proxy and
AI1NET are loaded at the same time, sharing their core, and the ratio of their CPU cost per
call (the CPU each used over its requests served) is kept, median of the rounds. Whatever
slows the machine slows both alike. The ratio is the share of the bare proxy's requests/s
that AI1NET would serve on a core of its own.

Then (``--costs``, on by default) what accounting and tracing cost, paired the same way, see
``bench/costs.py``. Writes ``bench/results/latest.json`` and ``latest.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import costs, gateway, openai_surface, report
from bench.passes import (
    MOCK_CORE,
    ROOT,
    SUT_CORE,
    Bench,
    Options,
    Progress,
    Target,
    cpu_per_call,
    median_round,
)
from bench.procs import Service, free_port, spawn, wait_tcp
from bench.stats import core_busy, core_ticks

RESULTS = ROOT / "bench" / "results"
LOG_DIR = RESULTS / "logs"
UNARY = '{"input": "hello"}'
STREAM = '{"input": "hello", "stream": true}'
GATEWAY_STREAM = f'{{"model": "{gateway.MODEL}", "input": "hello", "stream": true}}'
THROUGHPUT = ("direct", "bare-http", "bare-grpc", "ai1net-http", "ai1net-grpc", "ai1net-openai")
LATENCY = (*THROUGHPUT, "direct-stream", "ai1net-http-stream", "ai1net-grpc-stream",
           "ai1net-openai-stream")


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


@dataclass(slots=True)
class Systems:
    """Everything under test, started once and idle on core 1 while another is loaded."""

    targets: dict[str, Target] = field(default_factory=dict)
    memory: dict[str, Service] = field(default_factory=dict)  # whose peak RSS each row shows
    startup_s: float = 0.0


def start_mock(stack: ExitStack, name: str, delay_ms: float = 0.0) -> tuple[Service, str]:
    """The mock provider on core 0; its generate URL."""
    port = free_port()
    mock = spawn(name, python_module("bench.mock_provider", "--port", str(port),
                                     "--delay-ms", str(delay_ms)),
                 core=MOCK_CORE, log_dir=LOG_DIR)
    stack.callback(mock.stop)
    wait_tcp(mock, port)
    return mock, f"http://127.0.0.1:{port}/v1/generate"


def start_bare(stack: ExitStack, kind: str, mock_url: str) -> tuple[Service, str]:
    port = free_port()
    proxy = spawn(f"bare-{kind}", python_module("bench.bare_proxies", kind, "--port", str(port),
                                                "--upstream", mock_url),
                  core=SUT_CORE, log_dir=LOG_DIR)
    stack.callback(proxy.stop)
    wait_tcp(proxy, port)
    return proxy, f"http://127.0.0.1:{port}/v1/generate" if kind == "http" \
        else f"127.0.0.1:{port}"


def start_systems(stack: ExitStack, bench: Bench, mock: Service, mock_url: str) -> Systems:
    systems = Systems()
    mocked = {"mock": mock}
    systems.targets["direct"] = Target("http", mock_url, UNARY, client_core=SUT_CORE,
                                       watch=mocked)
    systems.targets["direct-stream"] = Target("http-stream", mock_url, STREAM,
                                              client_core=SUT_CORE, watch=mocked)
    for kind in ("http", "grpc"):
        proxy, url = start_bare(stack, kind, mock_url)
        systems.targets[f"bare-{kind}"] = Target(kind, url, watch={**mocked, "sut": proxy})
        systems.memory[f"bare-{kind}"] = proxy
    admin_key = secrets.token_urlsafe(24)
    bench.progress.start("AI1NET start-up", 0)
    ai1net = gateway.start(admin_key=admin_key, log_dir=LOG_DIR, name="ai1net",
                           extra_env=bench.options.ai1net_env)
    stack.callback(ai1net.stop)
    bench.progress.done(f"ready in {ai1net.startup_s:.2f} s")
    systems.startup_s = ai1net.startup_s
    key, watch = ai1net.prepare(admin_key, mock_url), {**mocked, "sut": ai1net.service}
    http_url = f"{ai1net.http_url}/v1/generate"
    systems.targets.update({
        "ai1net-http": Target("http", http_url, key=key, watch=watch),
        "ai1net-grpc": Target("grpc", ai1net.grpc_target, key=key, watch=watch),
        "ai1net-http-stream": Target("http-stream", http_url, GATEWAY_STREAM, key=key,
                                     watch=watch),
        "ai1net-grpc-stream": Target("grpc-stream", ai1net.grpc_target, key=key, watch=watch),
    })
    systems.targets.update(openai_surface.targets(ai1net.http_url, gateway.MODEL,
                                                  systems.targets["ai1net-http"]))
    systems.memory.update(dict.fromkeys(
        ("ai1net-http", "ai1net-grpc", "ai1net-http-stream", "ai1net-grpc-stream",
         "ai1net-openai", "ai1net-openai-stream"), ai1net.service))
    return systems


def measure(bench: Bench, systems: Systems) -> dict[str, Any]:
    """Throughput passes in interleaved rounds (median kept), then one pass each at c=1."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in THROUGHPUT}
    for number in range(1, bench.options.rounds + 1):
        for name in THROUGHPUT:
            label = name if bench.options.rounds == 1 else f"{name} round {number}"
            rounds[name].append(bench.throughput(label, systems.targets[name]))
    scenarios: dict[str, dict[str, Any]] = {}
    for name in THROUGHPUT:
        scenarios[name] = {"throughput": median_round(rounds[name]),
                           "throughput_rounds_rps": [r.get("summary", {}).get("rps")
                                                     for r in rounds[name]]}
    for name in LATENCY:
        scenarios.setdefault(name, {}).update(bench.single(name, systems.targets[name]))
    for name, service in systems.memory.items():
        scenarios[name]["rss_mib"] = service.peak_rss_mib()
    return scenarios


def paired_with_bare(bench: Bench, systems: Systems) -> dict[str, Any]:
    """AI1NET's CPU cost per call against the bare proxy's, both loaded at once."""
    paired: dict[str, Any] = {}
    for kind in ("http", "grpc"):
        ratios: list[float | None] = []
        for number in range(1, bench.options.pair_rounds + 1):
            results = bench.together(f"paired {kind} round {number}", {
                "bare": systems.targets[f"bare-{kind}"],
                "ai1net": systems.targets[f"ai1net-{kind}"]})
            costs_us = {name: cpu_per_call(result) if "summary" in result else 0.0
                        for name, result in results.items()}
            ratios.append(costs_us["bare"] / costs_us["ai1net"]
                          if costs_us["bare"] and costs_us["ai1net"] else None)
            paired.setdefault(f"{kind}_passes", []).append(
                {name: {"rps": result.get("summary", {}).get("rps"),
                        "cpu_us_per_call": costs_us[name],
                        "client_core_busy_pct": result.get("cores_busy_pct", {}).get(
                            f"cpu{MOCK_CORE}")} for name, result in results.items()})
        known = [ratio for ratio in ratios if ratio is not None]
        paired[kind] = statistics.median(known) if known else None
        paired[f"{kind}_rounds"] = ratios
    return paired


def time_startups(bench: Bench, first_s: float) -> dict[str, Any]:
    """More AI1NET start-ups (fresh SQLite each) beside the one that served the load."""
    runs = [first_s]
    for attempt in range(2, bench.options.startup_runs + 1):
        bench.progress.start(f"AI1NET start-up #{attempt}", 0)
        again = gateway.start(admin_key=secrets.token_urlsafe(24), log_dir=LOG_DIR,
                              name=f"ai1net-start{attempt}", extra_env=bench.options.ai1net_env)
        again.stop()
        runs.append(again.startup_s)
        bench.progress.done(f"ready in {again.startup_s:.2f} s")
    return {"runs_s": runs, "median_s": statistics.median(runs), "max_s": max(runs)}


# -- the run -------------------------------------------------------------------------------


def wait_until_idle(seconds: float) -> dict[str, float]:
    """Busy share of each core over one second, waiting up to ``seconds`` for < 15%."""
    deadline = time.perf_counter() + seconds
    while True:
        before = core_ticks()
        time.sleep(1.0)
        busy = core_busy(before, core_ticks())
        if max(busy.values(), default=0) < 15 or time.perf_counter() >= deadline:
            return busy


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True, check=False).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "commit": commit,
            "taskset": shutil.which("taskset") is not None}


def notes(results: dict[str, Any]) -> list[str]:
    lines = [
        "Layout: mock provider + load generator pinned to cpu0; the systems under test on cpu1,"
        " one loaded at a time; direct baseline: load generator on cpu1."
        if results["machine"]["taskset"] else
        "Layout: taskset not found, nothing pinned: every process shares every core.",
        "Added latency = system at c=1 minus direct at c=1 (gRPC rows too: there is no direct"
        " gRPC provider); added TTFC = time to first chunk minus the direct stream's.",
    ]
    idle = results["idle_before_pct"]
    if max(idle.values(), default=0) >= 15:
        lines.append(f"WARNING: the machine was busy before the run ({idle}); numbers are low"
                     " and noisy.")
    for name, data in results["scenarios"].items():
        for phase in ("throughput", "latency"):
            lines += pass_warnings(f"{name} {phase}", data.get(phase) or {})
    return lines


def pass_warnings(label: str, result: dict[str, Any]) -> list[str]:
    if "failed" in result:
        return [f"WARNING: {label} failed: {result['failed'][-300:]}"]
    warnings = []
    client = result.get("cpu_pct", {}).get("client", 0)
    if client >= 85:
        warnings.append(f"WARNING: {label}: the load generator used {client:.0f}% of a core;"
                        " it may be the limit.")
    other = result.get("other_load_pct", {})
    if max(other.values(), default=0) >= 15:
        warnings.append(f"WARNING: {label}: other processes took {other} of the cores.")
    stolen = result.get("stolen_pct", {})
    if max(stolen.values(), default=0) >= 5:
        warnings.append(f"WARNING: {label}: the hypervisor stole {stolen} of the cores.")
    return warnings


def load_peer(results: dict[str, Any]) -> None:
    """Add LiteLLM's rows from the last ``make bench-peer`` (a separate run), if any."""
    path = RESULTS / "peer.json"
    if not path.exists():
        return
    peer = orjson.loads(path.read_bytes())
    if peer.get("scenarios"):
        results["scenarios"].update(peer["scenarios"])
        results["notes"].append(f"LiteLLM rows from the bench-peer run at {peer.get('at')} "
                                f"(litellm {peer.get('version')}), not this run; their added "
                                "latency is against that run's direct calls.")


def run(options: Options) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    idle = wait_until_idle(options.wait_idle_s)
    steps = 1 + len(THROUGHPUT) * options.rounds + len(LATENCY) + options.startup_runs - 1 \
        + 2 * options.pair_rounds + openai_surface.steps(options.pair_rounds)
    if options.costs:
        steps += costs.steps(options.costs_rounds)
    bench = Bench(options, Progress(total=steps))
    with ExitStack() as stack:
        mock, mock_url = start_mock(stack, "mock", options.delay_ms)
        systems = start_systems(stack, bench, mock, mock_url)
        scenarios = measure(bench, systems)
        paired = paired_with_bare(bench, systems) if options.pair_rounds else None
        surfaces = openai_surface.measure(
            bench, {name: systems.targets[name] for name in openai_surface.PAIRED},
            mock, mock_url, LOG_DIR) if options.pair_rounds else None
        cost_summary = None
        if options.costs:
            added, cost_summary = costs.measure(
                bench, systems.targets["ai1net-http"], systems.memory["ai1net-http"], mock,
                mock_url, LOG_DIR)
            scenarios.update(added)
    startup = time_startups(bench, systems.startup_s)
    results: dict[str, Any] = {
        "started_at": started_at, "wall_s": round(time.perf_counter() - bench.progress.began, 1),
        "machine": machine(), "options": dataclasses.asdict(options),
        "idle_before_pct": idle, "scenarios": scenarios, "startup": startup,
    }
    if paired is not None:
        results["paired"] = paired
    if surfaces is not None:
        results["openai_surface"] = surfaces
    if cost_summary is not None:
        results["costs"] = cost_summary
    results["notes"] = notes(results)
    load_peer(results)
    return results


def parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of each throughput pass (default 5)")
    parser.add_argument("--latency-duration", type=float, default=3.0,
                        help="seconds of each concurrency-1 pass (default 3)")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds first")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1,
                        help="throughput passes per system, interleaved; the median is kept")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="the mock provider's delay before answering")
    parser.add_argument("--startup-runs", type=int, default=3,
                        help="AI1NET start-ups to time (the first one also serves the load)")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="wait up to this many seconds for an idle machine first")
    parser.add_argument("--grpc-client", choices=("aio", "h2load"), default="aio",
                        help="load client of the gRPC throughput passes (h2load: a C "
                        "cross-check, blind to grpc-status; c=1 passes stay grpc.aio)")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run: 2 s passes, 1 s at c=1, one start-up")
    parser.add_argument("--ai1net-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for AI1NET (repeatable; the cost variants "
                        "get it too)")
    parser.add_argument("--pair-rounds", type=int, default=3,
                        help="rounds of the paired passes (bare proxy and AI1NET loaded at "
                        "once), the median kept; 0 skips them (default 3)")
    parser.add_argument("--costs", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure AI1NET HTTP with AI1NET_ACCOUNTING=0 and with "
                        "AI1NET_TRACING=0, each loaded at once with the default (about a "
                        "minute; default on)")
    parser.add_argument("--costs-rounds", type=int, default=3,
                        help="rounds of the cost passes, the median kept (default 3)")
    args = parser.parse_args(argv)
    common = {"concurrency": args.concurrency, "delay_ms": args.delay_ms,
              "rounds": max(1, args.rounds), "pair_rounds": max(0, args.pair_rounds),
              "wait_idle_s": args.wait_idle, "grpc_client": args.grpc_client,
              "costs": args.costs, "costs_rounds": max(1, args.costs_rounds),
              "ai1net_env": dict(item.split("=", 1) for item in args.ai1net_env)}
    if args.quick:
        return Options(duration_s=2.0, latency_duration_s=1.0, warmup_s=0.5, startup_runs=1,
                       **common)
    return Options(duration_s=args.duration, latency_duration_s=args.latency_duration,
                   warmup_s=args.warmup, startup_runs=max(1, args.startup_runs), **common)


def main(argv: list[str] | None = None) -> None:
    options = parse(argv)
    results = run(options)
    report.write_json(results, RESULTS / "latest.json")
    charted = report.write_chart(results, RESULTS / "latest.png")
    print(report.table(results))
    print(f"\nwall time {results['wall_s']:.0f} s; wrote {RESULTS / 'latest.json'}"
          + (f" and {RESULTS / 'latest.png'}" if charted else " (no matplotlib: no chart)"))


if __name__ == "__main__":
    main()
