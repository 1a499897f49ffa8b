"""``python -m bench.fairshare`` (``make bench-fairshare``): a healthy model's latency while
another model's provider stalls (issue 12, item 4).

The mock provider and the hostile provider (``tests/support/hostile.py``) run on core 0 with
the load generator, AI1NET (SQLite) on core 1. The healthy model (``bench``, on the mock) is
loaded closed-loop at concurrency 8 for 10 s after a 1 s warm-up: once alone, then with 200
calls stalled on the slow model, whose provider (``/stall?s=30``) reads each request and
answers nothing for 30 s. The slow model is registered with ``max_concurrency`` 100, so half
of the 200 are shed at once (503 with Retry-After) and half wait for the provider.

The machine is shared, so the two passes alternate for ``--rounds`` (3) rounds and the
median of the rounds' p99 ratios is kept. Checked: that median within 2x, no error on the
healthy model, every slow call still in flight when its loaded pass ended, and every shed one
with Retry-After; the slow model's calls are counted by status. Writes
``bench/results/fairshare.json``; the exit status is 1 when a check fails.
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
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from bench import gateway
from bench.hostile import provider_state, start_provider
from bench.passes import Bench, Options, Progress, Target
from bench.procs import Service
from bench.report import fmt, render
from bench.run import LOG_DIR, RESULTS, start_mock

SLOW = "slow"
P99_RATIO_BOUND = 2.0


@dataclass(frozen=True, slots=True)
class Stalled:
    status: int
    seconds: float
    retry_after: str | None


async def stalled_call(session: aiohttp.ClientSession, url: str, key: str) -> Stalled:
    started = time.perf_counter()
    async with session.post(url, headers={"Authorization": f"Bearer {key}"},
                            json={"model": SLOW, "input": "hi"}) as response:
        await response.read()
    return Stalled(response.status, time.perf_counter() - started,
                   response.headers.get("Retry-After"))


async def until_held(session: aiohttp.ClientSession, provider_url: str, count: int) -> None:
    """Until the provider holds ``count`` stalled requests (or 10 s have passed)."""
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        if (await provider_state(session, provider_url, "/stall"))["open"] >= count:
            return
        await asyncio.sleep(0.05)


async def with_stalled(args: argparse.Namespace, bench: Bench, target: Target, http_url: str,
                       key: str, provider_url: str) -> tuple[dict[str, Any], list[Stalled], int]:
    """The healthy model's pass while ``args.stalled`` calls wait on the slow model; the
    slow calls' outcomes, and how many were still in flight when the pass ended."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.stall + 60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        calls = [asyncio.create_task(stalled_call(session, f"{http_url}/v1/generate", key))
                 for _ in range(args.stalled)]
        await until_held(session, provider_url, min(args.stalled, args.max_concurrency))
        loaded = await asyncio.to_thread(
            bench.load, f"healthy model, {args.stalled} calls stalled on another", target,
            concurrency=args.concurrency, duration=args.duration, warmup=1.0)
        in_flight = sum(not call.done() for call in calls)
        return loaded, list(await asyncio.gather(*calls)), in_flight


def one_round(args: argparse.Namespace, alone: dict[str, Any], loaded: dict[str, Any],
              stalled: list[Stalled], in_flight: int) -> dict[str, Any]:
    """What one round measured, and what in it broke a check (the p99 ratio apart)."""
    p99 = [result.get("summary", {}).get("p99_ms") for result in (alone, loaded)]
    shed = [call for call in stalled if call.status == 503]
    waited = [call.seconds for call in stalled if call.status != 503]
    failed = []
    errors = sum(result.get("summary", {}).get("errors", 1) for result in (alone, loaded))
    if errors:
        failed.append(f"the healthy model had {errors} errors ({loaded.get('first_error')})")
    if in_flight < min(args.stalled, args.max_concurrency):
        failed.append(f"only {in_flight} slow calls were still in flight when the pass ended")
    if any(call.retry_after is None for call in shed):
        failed.append("a shed call had no Retry-After")
    return {"alone": alone, "loaded": loaded, "failed": failed,
            "p99_ratio": p99[1] / p99[0] if p99[0] and p99[1] else None,
            "statuses": dict(Counter(str(call.status) for call in stalled)),
            "in_flight_at_end": in_flight,
            "shed_max_s": max((call.seconds for call in shed), default=None),
            "shed_retry_after": sorted({call.retry_after or "" for call in shed}),
            "waited_median_s": statistics.median(waited) if waited else None}


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["p99_ratio"] for r in rounds if r["p99_ratio"] is not None]
    ratio = statistics.median(ratios) if len(ratios) == len(rounds) else None
    failed = [f"round {number}: {line}" for number, r in enumerate(rounds, 1)
              for line in r["failed"]]
    if ratio is None or ratio > P99_RATIO_BOUND:
        failed.append(f"the healthy model's p99 ratio is {fmt(ratio, '.2f')} (median of the "
                      f"rounds), over {P99_RATIO_BOUND:g}")
    return {"p99_ratio": ratio, "rounds": rounds, "failed": failed}


def passed(result: dict[str, Any]) -> str:
    data = result.get("summary", {})
    return f"{fmt(data.get('p50_ms'), '.1f')} / {fmt(data.get('p99_ms'), '.1f')}"


def other_load(result: dict[str, Any]) -> str:
    other = result.get("other_load_pct", {})
    return f"{other.get('cpu0', 0):.0f}/{other.get('cpu1', 0):.0f}"


def table(results: dict[str, Any]) -> str:
    rows = [["round", "healthy alone p50 / p99 ms", "with the stalled calls p50 / p99 ms",
             "p99 ratio", "slow model statuses", "other load% alone; stalled"]]
    for number, r in enumerate(results["rounds"], 1):
        rows.append([str(number), passed(r["alone"]), passed(r["loaded"]),
                     fmt(r["p99_ratio"], ".2f"),
                     " ".join(f"{status} x{count}" for status, count in r["statuses"].items()),
                     f"{other_load(r['alone'])}; {other_load(r['loaded'])}"])
    last = results["rounds"][-1]
    return "\n".join([
        render(rows), "",
        f"p99 with the stalled calls / alone: {fmt(results['p99_ratio'], '.2f')}, median of "
        f"{len(results['rounds'])} rounds (wanted <= {P99_RATIO_BOUND:g})",
        f"slow model (max_concurrency {results['max_concurrency']}), last round: shed within "
        f"{fmt(last['shed_max_s'], '.3f')} s with Retry-After {last['shed_retry_after']}; the "
        f"others answered after {fmt(last['waited_median_s'], '.1f')} s (median), "
        f"{last['in_flight_at_end']} still in flight when the loaded pass ended"])


def measure(args: argparse.Namespace, stack: ExitStack) -> dict[str, Any]:
    mock, mock_url = start_mock(stack, "fairshare-mock")
    provider_url = start_provider(stack)
    admin_key = secrets.token_urlsafe(24)
    ai1net = gateway.start(admin_key=admin_key, log_dir=LOG_DIR, name="fairshare-ai1net",
                           extra_env={})
    stack.callback(ai1net.stop)
    key = ai1net.prepare(admin_key, mock_url)
    ai1net.register(admin_key, SLOW, f"{provider_url}/stall?s={args.stall:g}",
                    max_concurrency=args.max_concurrency, timeout_ms=int(args.stall + 30) * 1000,
                    first_byte_timeout_ms=int(args.stall + 15) * 1000)
    watch: dict[str, Service] = {"mock": mock, "sut": ai1net.service}
    target = Target("http", f"{ai1net.http_url}/v1/generate", key=key, watch=watch)
    bench = Bench(Options(), Progress(total=2 * args.rounds))
    rounds = []
    for number in range(1, args.rounds + 1):
        alone = bench.load(f"round {number}: healthy model alone", target,
                           concurrency=args.concurrency, duration=args.duration, warmup=1.0)
        rounds.append(one_round(args, alone, *asyncio.run(
            with_stalled(args, bench, target, ai1net.http_url, key, provider_url))))
    return {**summary(rounds), "max_concurrency": args.max_concurrency}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--stall", type=float, default=30.0, help="seconds each one stalls")
    parser.add_argument("--max-concurrency", type=int, default=100,
                        help="the slow model's max_concurrency")
    parser.add_argument("--concurrency", type=int, default=8, help="the healthy model's load")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3,
                        help="alone then stalled, this many times; the median ratio is kept")
    args = parser.parse_args(argv)
    if args.duration + 5 > args.stall:
        parser.error("--stall must outlast --duration by 5 s or more")
    with ExitStack() as stack:
        results = measure(args, stack)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fairshare.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(table(results))
    print("\n".join(["", *(f"FAILED {line}" for line in results["failed"])])
          if results["failed"] else "\nall checks held")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
