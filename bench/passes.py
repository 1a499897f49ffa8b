"""One load pass: a pinned load-generator process, its result, and the progress line."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.procs import Service, pinned

ROOT = Path(__file__).resolve().parent.parent
MOCK_CORE, SUT_CORE = 0, 1


@dataclass(frozen=True, slots=True)
class Options:
    duration_s: float = 5.0
    latency_duration_s: float = 3.0
    warmup_s: float = 1.0
    concurrency: int = 32
    rounds: int = 1
    pair_rounds: int = 3
    delay_ms: float = 0.0
    startup_runs: int = 3
    wait_idle_s: float = 0.0
    grpc_client: str = "aio"
    ai1net_env: dict[str, str] = field(default_factory=dict)
    costs: bool = True  # AI1NET HTTP with accounting off and with tracing off (bench/costs.py)
    costs_rounds: int = 3


class Progress:
    """One line on stderr: the step, its pass and the time spent (rewritten on a terminal)."""

    def __init__(self, total: int) -> None:
        self.total, self.step = total, 0
        self.tty = sys.stderr.isatty()
        self.began = time.perf_counter()
        self.label, self.seconds, self.step_began = "", 0.0, 0.0

    def start(self, label: str, seconds: float) -> None:
        self.step += 1
        self.label, self.seconds, self.step_began = label, seconds, time.perf_counter()
        self.tick()

    def tick(self) -> None:
        if self.tty:
            now = time.perf_counter()
            print(f"\r[{self.step}/{self.total}] {self.label}  {now - self.step_began:4.1f}/"
                  f"{self.seconds:.1f}s  (run {now - self.began:5.1f}s)\033[K", end="",
                  file=sys.stderr, flush=True)

    def done(self, note: str) -> None:
        line = f"[{self.step}/{self.total}] {self.label}: {note}"
        print(f"\r{line}\033[K" if self.tty else line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Target:
    """What a pass loads: the loadgen kind, where, with what, and who runs where."""

    kind: str
    url: str
    body: str | None = None
    key: str = ""
    client_core: int | None = MOCK_CORE  # None: not pinned (nor is anything else)
    watch: dict[str, Service] = field(default_factory=dict)

    def cores(self) -> dict[str, list[str]]:
        """Which watched processes (and the client) sit on which core (nothing is known
        when nothing is pinned)."""
        layout: dict[str, list[str]] = {f"cpu{MOCK_CORE}": [], f"cpu{SUT_CORE}": []}
        if self.client_core is None:
            return {}
        for name in self.watch:
            layout[f"cpu{MOCK_CORE if name == 'mock' else SUT_CORE}"].append(name)
        layout[f"cpu{self.client_core}"].append("client")
        return layout


@dataclass(slots=True)
class Bench:
    options: Options
    progress: Progress

    def load(self, label: str, target: Target, *, concurrency: int, duration: float,
             warmup: float, kind: str | None = None) -> dict[str, Any]:
        self.progress.start(label, warmup + duration)
        process = self._start(target, kind or target.kind, concurrency, duration, warmup)
        result = self._result(target, concurrency,
                              *self._wait(process, warmup + duration + 60))
        self.progress.done(describe(result) if "summary" in result else "FAILED")
        return result

    def together(self, label: str, targets: dict[str, Target], *,
                 concurrency: int | None = None) -> dict[str, dict[str, Any]]:
        """Throughput passes of several targets at the same time: systems under test that
        share a core split it, so the ratio of their costs per call is measured under the
        same conditions, whatever else the machine is doing meanwhile. (With
        ``concurrency=1``: latencies, and times to first chunk, side by side.)"""
        options = self.options
        concurrency = concurrency or options.concurrency
        self.progress.start(label, options.warmup_s + options.duration_s)
        # Each pass also watches the others' systems, so their share of the core is not
        # reported as interference.
        targets = {name: dataclasses.replace(target, watch={**target.watch, **{
            f"partner-{other}": partner.watch["sut"] for other, partner in targets.items()
            if other != name and "sut" in partner.watch}}) for name, target in targets.items()}
        started = {name: self._start(target, target.kind, concurrency,
                                     options.duration_s, options.warmup_s)
                   for name, target in targets.items()}
        results = {name: self._result(targets[name], concurrency, *self._wait(
                       process, options.warmup_s + options.duration_s + 60))
                   for name, process in started.items()}
        self.progress.done("; ".join(
            f"{name} {result['summary']['rps']:,.0f} req/s at {cpu_per_call(result):.0f} µs "
            "of CPU a call" if "summary" in result else f"{name} FAILED"
            for name, result in results.items()))
        return results

    def _start(self, target: Target, kind: str, concurrency: int, duration: float,
               warmup: float) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "bench.loadgen", kind,
                   "--target", target.url, "--concurrency", str(concurrency),
                   "--duration", str(duration), "--warmup", str(warmup), "--key", target.key]
        if target.body is not None:
            command += ["--body", target.body]
        for name, service in target.watch.items():
            command += ["--watch", f"{name}={service.pid}"]
        return subprocess.Popen(pinned(command, target.client_core), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    @staticmethod
    def _result(target: Target, concurrency: int, out: bytes, err: bytes,
                code: int) -> dict[str, Any]:
        if code != 0 or not out.strip():
            return {"failed": err.decode(errors="replace")[-2000:]}
        result: dict[str, Any] = orjson.loads(out)
        result["concurrency"], result["client_core"] = concurrency, target.client_core
        result["other_load_pct"] = other_load(result, target.cores())
        return result

    def _wait(self, process: subprocess.Popen[bytes], limit_s: float) -> tuple[bytes, bytes, int]:
        limit = time.perf_counter() + limit_s
        while True:
            try:
                out, err = process.communicate(timeout=0.25)
                return out, err, process.returncode
            except subprocess.TimeoutExpired:
                self.progress.tick()
                if time.perf_counter() > limit:
                    process.kill()
                    out, err = process.communicate()
                    return out, err + b"\nkilled: over time", -9

    def throughput(self, name: str, target: Target) -> dict[str, Any]:
        """One pass at the configured concurrency."""
        options = self.options
        heavy = "grpc-h2load" if target.kind == "grpc" and options.grpc_client == "h2load" \
            else target.kind
        return self.load(f"{name} c={options.concurrency}", target, kind=heavy,
                         concurrency=options.concurrency, duration=options.duration_s,
                         warmup=options.warmup_s)

    def both(self, name: str, target: Target) -> dict[str, Any]:
        """Throughput at the configured concurrency, then latency at concurrency 1."""
        return {"throughput": self.throughput(name, target), **self.single(name, target)}

    def single(self, name: str, target: Target) -> dict[str, Any]:
        """Latency (and time to first chunk, for streams) at concurrency 1."""
        options = self.options
        latency = self.load(f"{name} c=1", target, concurrency=1,
                            duration=options.latency_duration_s,
                            warmup=min(options.warmup_s, 0.5))
        return {"latency": latency}


def cpu_per_call(result: dict[str, Any]) -> float:
    """Microseconds of the system under test's CPU per request in a pass (0 if unknown)."""
    rps, sut = result["summary"]["rps"], result.get("cpu_pct", {}).get("sut")
    return sut * 10_000 / rps if rps and sut else 0.0


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate (the lower one of two middles), whole."""
    done = sorted((r for r in rounds if "summary" in r), key=lambda r: r["summary"]["rps"])
    return done[(len(done) - 1) // 2] if done else rounds[0]


def other_load(result: dict[str, Any], layout: dict[str, list[str]]) -> dict[str, float]:
    """Busy share of each core not explained by the processes of the run: interference."""
    busy, shares = result.get("cores_busy_pct", {}), result.get("cpu_pct", {})
    return {core: round(max(0.0, busy.get(core, 0.0) - sum(shares.get(n, 0.0) for n in names)),
                        1) for core, names in layout.items()}


def describe(result: dict[str, Any]) -> str:
    summary = result["summary"]
    text = (f"{summary['rps']:,.0f} req/s, p50 {summary['p50_ms'] or 0:.2f} ms, "
            f"p99 {summary['p99_ms'] or 0:.2f} ms")
    if "ttfc" in result:
        text += f", TTFC p50 {result['ttfc']['p50_ms']:.2f} ms"
    if summary["errors"]:
        text += f", {summary['errors']} errors ({result.get('first_error')})"
    shares = " ".join(f"{name} {pct:.0f}%" for name, pct in result.get("cpu_pct", {}).items())
    other, stolen = result["other_load_pct"], result.get("stolen_pct", {})
    busy = result.get("cores_busy_pct", {})
    load = (f"other load cpu0 {other['cpu0']:.0f}% cpu1 {other['cpu1']:.0f}%" if other
            else f"cores busy {busy.get('cpu0', 0):.0f}%/{busy.get('cpu1', 0):.0f}%")
    return text + (f"  [CPU {shares}; {load}; stolen {stolen.get('cpu0', 0):.0f}%/"
                   f"{stolen.get('cpu1', 0):.0f}%]")
