"""``python -m bench.hostile`` (``make bench-hostile``): AI1NET's memory while its providers
misbehave (issue 12, item 2).

The socket-level hostile provider (``tests/support/hostile.py``, core 0) and AI1NET (SQLite,
core 1) run as processes of their own. AI1NET's RSS is read at idle (after a normal call),
then each kind of hostile answer, and all kinds mixed, is called 8 times at once, for
``--rounds`` rounds. Each batch calls models registered for it (the breaker ejects a model
after 5 failures, and every call of a batch is meant to reach the provider) with the default
limits (``max_response_bytes`` 16 MiB, ``max_event_bytes`` 1 MiB, a header block of 64 KiB
and 128 fields) and ``timeout_ms`` 5000 (``--timeout-ms``), so that the trickle ends.

Per batch: the peak RSS while the calls are in flight (VmRSS sampled every 10 ms, and VmHWM)
and how far it rose over the RSS before the batch, AI1NET's CPU time, each call's status and
time to its error, the RSS after (once the provider has seen every connection closed, and
``--settle`` seconds more), and a normal call right after. The table shows, per kind, the
worst of its rounds.

Checked: every hostile call got its documented status (502; 504 for the trickle), every
normal call after a batch 200, the peak within 256 MiB of idle and the RSS after within
32 MiB. Writes ``bench/results/hostile.json``; the exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from bench import gateway
from bench.passes import MOCK_CORE
from bench.procs import PeakRss, Service, free_port, rss_mib, spawn, wait_tcp
from bench.report import fmt, pair, render
from bench.run import LOG_DIR, RESULTS, python_module
from bench.stats import process_cpu_s

KINDS = {  # kind: the hostile provider's path, streamed, the documented status
    "gzip bomb": ("/gzip-bomb", False, 502),
    "deflate bomb": ("/deflate-bomb", False, 502),
    "huge body": ("/huge-body", False, 502),
    "endless chunked": ("/endless-chunked", False, 502),
    "header flood": ("/header-flood", False, 502),
    "giant header": ("/giant-header", False, 502),
    "endless line": ("/endless-line", True, 502),
    "trickle": ("/trickle", False, 504),
}
MIXED = "all mixed"
IN_FLIGHT = 8
PEAK_BOUND_MIB, AFTER_BOUND_MIB = 256.0, 32.0


def start_provider(stack: ExitStack) -> str:
    """The hostile provider on core 0; its base URL."""
    port = free_port()
    provider = spawn("hostile", python_module("tests.support.hostile", "--port", str(port)),
                     core=MOCK_CORE, log_dir=LOG_DIR)
    stack.callback(provider.stop)
    wait_tcp(provider, port)
    return f"http://127.0.0.1:{port}"


async def provider_state(session: aiohttp.ClientSession, provider_url: str, path: str, *,
                         closed: bool = False) -> dict[str, int]:
    """How many requests the provider read on ``path`` and how many are still open (with
    ``closed``: once none is, or after its 10 s wait)."""
    params = {"path": path, **({"closed": "1"} if closed else {})}
    async with session.get(f"{provider_url}/_state", params=params) as response:
        return dict(orjson.loads(await response.read()))


@dataclass(frozen=True, slots=True)
class Call:
    model: str
    stream: bool = False
    expected: int = 200


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    seconds: float
    error: str  # the error object's message, if any


@dataclass(slots=True)
class Row:
    """One kind of batch over its rounds."""

    statuses: Counter[int] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    normal_after: Counter[int] = field(default_factory=Counter)
    cpu_s: float = 0.0  # AI1NET's CPU over the batches
    rise_mib: float = 0.0  # the most a batch's peak rose over the RSS before it
    peak_mib: float = 0.0
    after_mib: float = 0.0


@dataclass(slots=True)
class HostileRun:
    ai1net: gateway.Gateway
    admin_key: str
    key: str
    provider_url: str
    session: aiohttp.ClientSession
    settle_s: float
    timeout_ms: int
    idle_mib: float = 0.0
    rows: dict[str, Row] = field(default_factory=dict)

    async def call(self, call: Call) -> Outcome:
        started = time.perf_counter()
        async with self.session.post(
                f"{self.ai1net.http_url}/v1/generate",
                headers={"Authorization": f"Bearer {self.key}"},
                json={"model": call.model, "input": "hi", "stream": call.stream}) as response:
            body = await response.read()
        last = body.splitlines()[-1] if body.strip() else b"{}"
        try:
            error = orjson.loads(last).get("error") or {}
        except orjson.JSONDecodeError:
            error = {"message": repr(last[:200])}
        return Outcome(response.status, time.perf_counter() - started,
                       str(error.get("message", "")))

    async def settled_rss(self, paths: set[str]) -> float:
        """RSS once the provider has seen every connection of ``paths`` closed, and the
        settle time has passed."""
        for path in paths:
            await provider_state(self.session, self.provider_url, path, closed=True)
        await asyncio.sleep(self.settle_s)
        return rss_mib(self.ai1net.service) or 0.0

    async def batch(self, name: str, number: int, kinds: list[str]) -> None:
        """``kinds`` (one per call, IN_FLIGHT in all) at once, on models of their own."""
        calls, paths = [], set()
        for index, kind in enumerate(kinds):
            path, stream, status = KINDS[kind]
            model = f"{path[1:]}-{name.replace(' ', '-')}-{number}-{index}"
            self.ai1net.register(self.admin_key, model, self.provider_url + path,
                                 timeout_ms=self.timeout_ms)
            calls.append(Call(model, stream, status))
            paths.add(path)
        cpu_before = process_cpu_s(self.ai1net.service.pid) or 0.0
        before = rss_mib(self.ai1net.service) or 0.0
        with PeakRss(self.ai1net.service.pid) as peak:
            outcomes = await asyncio.gather(*(self.call(call) for call in calls))
        cpu = (process_cpu_s(self.ai1net.service.pid) or 0.0) - cpu_before
        after = await self.settled_rss(paths)
        normal = await self.call(Call("normal"))
        row = self.rows.setdefault(name, Row())
        for call, outcome in zip(calls, outcomes, strict=True):
            row.statuses[outcome.status] += 1
            row.seconds.append(outcome.seconds)
            if outcome.status != call.expected:
                row.wrong.append(f"{call.model}: {outcome.status} {outcome.error[:200]}")
        row.normal_after[normal.status] += 1
        row.cpu_s += cpu
        row.rise_mib = max(row.rise_mib, peak.peak_mib - before)
        row.peak_mib = max(row.peak_mib, peak.peak_mib)
        row.after_mib = max(row.after_mib, after)
        print(f"[{name} round {number}] statuses {dict(Counter(o.status for o in outcomes))}, "
              f"peak {peak.peak_mib:.1f} MiB, after {after:.1f} MiB (idle {self.idle_mib:.1f}),"
              f" normal call after: {normal.status}", file=sys.stderr, flush=True)


async def measure(run: HostileRun, rounds: int) -> None:
    run.ai1net.register(run.admin_key, "normal", run.provider_url + "/ok")
    first = await run.call(Call("normal"))
    if first.status != 200:
        raise RuntimeError(f"the normal call failed: {first}")
    run.idle_mib = await run.settled_rss({"/ok"})
    for number in range(1, rounds + 1):
        for kind in KINDS:
            await run.batch(kind, number, [kind] * IN_FLIGHT)
        await run.batch(MIXED, number, list(KINDS))


def checks(run: HostileRun) -> list[str]:
    """What broke a bound, or an empty list."""
    failed = []
    for name, row in run.rows.items():
        failed += [f"{name}: {wrong}" for wrong in row.wrong[:3]]
        if set(row.normal_after) != {200}:
            failed.append(f"{name}: the normal call after got {dict(row.normal_after)}")
        if row.peak_mib - run.idle_mib > PEAK_BOUND_MIB:
            failed.append(f"{name}: peak {row.peak_mib:.1f} MiB is more than "
                          f"{PEAK_BOUND_MIB:.0f} MiB over idle ({run.idle_mib:.1f} MiB)")
        if row.after_mib - run.idle_mib > AFTER_BOUND_MIB:
            failed.append(f"{name}: {row.after_mib:.1f} MiB after is more than "
                          f"{AFTER_BOUND_MIB:.0f} MiB over idle ({run.idle_mib:.1f} MiB)")
    return failed


def counts(statuses: Counter[int]) -> str:
    return " ".join(f"{status} x{count}" for status, count in sorted(statuses.items()))


def table(run: HostileRun) -> str:
    rows = [["kind (8 in flight)", "statuses", "time to error p50 / max s",
             "AI1NET CPU ms a call", "idle MiB", "peak MiB", "rise MiB", "after MiB",
             "normal call after"]]
    for name, row in run.rows.items():
        rows.append([
            name, counts(row.statuses),
            pair(statistics.median(row.seconds), max(row.seconds)),
            fmt(1000 * row.cpu_s / len(row.seconds)), fmt(run.idle_mib, ".1f"),
            fmt(row.peak_mib, ".1f"), fmt(row.rise_mib, ".1f"), fmt(row.after_mib, ".1f"),
            counts(row.normal_after)])
    return render(rows)


async def hostile(args: argparse.Namespace, ai1net: gateway.Gateway, admin_key: str,
                  provider_url: str) -> HostileRun:
    _key_id, key = ai1net.mint_key(admin_key, "hostile")
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.timeout_ms / 1000 + 30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        run = HostileRun(ai1net, admin_key, key, provider_url, session, args.settle,
                         args.timeout_ms)
        await measure(run, args.rounds)
    return run


def start_gateway(stack: ExitStack, name: str, extra_env: dict[str, str]
                  ) -> tuple[gateway.Gateway, str]:
    """AI1NET on core 1 (SQLite in a temporary folder) and its admin key."""
    admin_key = secrets.token_urlsafe(24)
    ai1net = gateway.start(admin_key=admin_key, log_dir=LOG_DIR, name=name, extra_env=extra_env)
    stack.callback(ai1net.stop)
    return ai1net, admin_key


def results(run: HostileRun, service: Service, failed: list[str]) -> dict[str, Any]:
    return {"idle_mib": run.idle_mib, "peak_bound_mib": PEAK_BOUND_MIB,
            "after_bound_mib": AFTER_BOUND_MIB, "vm_hwm_mib": service.peak_rss_mib(),
            "rows": {name: {"statuses": counts(row.statuses), "seconds": row.seconds,
                            "cpu_s": row.cpu_s,
                            "peak_mib": row.peak_mib, "rise_mib": row.rise_mib,
                            "after_mib": row.after_mib,
                            "normal_after": counts(row.normal_after), "wrong": row.wrong}
                     for name, row in run.rows.items()},
            "failed": failed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after the provider saw the connections closed")
    parser.add_argument("--timeout-ms", type=int, default=5000,
                        help="the hostile models' timeout_ms (the trickle's time to its 504); "
                        "on a machine whose cores are taken by others, the bombs may need more")
    parser.add_argument("--ai1net-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for AI1NET (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        provider_url = start_provider(stack)
        ai1net, admin_key = start_gateway(
            stack, "ai1net-hostile", dict(item.split("=", 1) for item in args.ai1net_env))
        run = asyncio.run(hostile(args, ai1net, admin_key, provider_url))
        failed = checks(run)
        outcome = results(run, ai1net.service, failed)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "hostile.json").write_bytes(orjson.dumps(outcome, option=orjson.OPT_INDENT_2))
    print(table(run))
    print("\n".join(["", *(f"FAILED {line}" for line in failed)]) if failed else
          f"\nall bounds held: peak within {PEAK_BOUND_MIB:.0f} MiB of idle, after within "
          f"{AFTER_BOUND_MIB:.0f} MiB, every status as documented, every normal call served")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
