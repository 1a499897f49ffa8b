"""``python -m bench.soak`` (``make soak``): AI1NET under steady open-loop load for minutes.

Starts the mock provider and AI1NET (SQLite, accounting on) as ``bench.run`` does (mock on
core 0, AI1NET on core 1; this process, which is the load generator, joins the mock on core 0),
measures AI1NET's maximum HTTP throughput with a short closed-loop pass at concurrency 32 (or
takes ``--rps``), then sends requests at half of it (``--fraction``) for ``--duration`` seconds
(default 600), open loop: each request is due at a fixed time whatever happened to the ones
before, so a slow gateway builds a backlog instead of slowing the load down. Latency is counted
from the time a request was due (no coordinated omission) and, apart, from the time it was
written. A progress line every 10 s.

Checked at the end:

- errors: none (non-2xx answers, lost connections, requests unanswered 10 s after the load);
- usage rows: AI1NET is stopped with SIGTERM (the write-behind buffer flushes on the way out),
  then the rows of ``usage_events`` for the key used only by the soak are counted with sqlite3
  and must equal the successful calls;
- memory: AI1NET's RSS is sampled every second; the least-squares slope (MiB per minute) is
  reported over the whole run and over its second half (after warm-up), "flat" meaning
  ≤ 0.5 MiB/min over the second half (about 50 bytes per call at 175 req/s; short runs are
  noisy).

Writes ``bench/results/soak.json``; the exit status is 1 when there were errors or the rows do
not match (the memory verdict is reported, not enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import time
from collections import Counter, deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from bench import gateway
from bench.loadgen import complete_answer, http_request
from bench.passes import MOCK_CORE, SUT_CORE, Bench, Options, Progress, Target, other_load
from bench.procs import TASKSET, Service, rss_mib
from bench.run import LOG_DIR, RESULTS, machine, start_mock, wait_until_idle
from bench.stats import CpuWindow, summarize

perf = time.perf_counter
FLAT_MIB_PER_MIN = 0.5
IDLE_CLOSE_S = 15.0  # well under aiohttp's 75 s keep-alive: never reuse one it is closing
DRAIN_S = 10.0


@dataclass(slots=True)
class Tally:
    """What happened to the requests: all of them, and those of the current progress window."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    due_latency: list[float] = field(default_factory=list)  # from the time it was due
    service_latency: list[float] = field(default_factory=list)  # from the time it was written
    window: list[float] = field(default_factory=list)

    def success(self, due_s: float, service_s: float) -> None:
        self.ok += 1
        self.due_latency.append(due_s)
        self.service_latency.append(service_s)
        self.window.append(due_s)

    def error(self, what: str) -> None:
        self.errors += 1
        self.error_kinds[what[:200]] += 1


class SoakConnection(asyncio.Protocol):
    """One keep-alive connection; the client hands it a request whenever it is idle."""

    def __init__(self, client: OpenLoop) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.due: float | None = None  # the request in flight: when it was due
        self.written_at = 0.0
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, due: float) -> None:
        assert self.transport is not None
        self.due, self.written_at = due, perf()
        self.transport.write(self.client.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answer = complete_answer(self.buffer)
        if answer is None or self.due is None:
            return
        head = bytes(self.buffer[:200])
        self.buffer.clear()
        due, self.due = self.due, None
        self.client.answered(self, due, answer, head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self, exc)


class OpenLoop:
    """Requests fired at their due times over a pool of keep-alive connections (last idle
    first, so few stay warm); when all ``limit`` connections are busy, requests queue."""

    def __init__(self, url: str, body: bytes, key: str, tally: Tally, limit: int) -> None:
        self.host, self.port, self.request = http_request(
            url, body, {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        self.tally, self.limit = tally, limit
        self.idle: list[SoakConnection] = []
        self.backlog: deque[float] = deque()
        self.connections = 0  # open or opening
        self.in_flight = 0  # fired and not yet answered (queued ones included)
        self.peak_connections = self.peak_backlog = 0
        self._connecting: set[asyncio.Task[None]] = set()
        self._settled = asyncio.Event()  # nothing in flight

    def _finished_one(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._settled.set()

    async def settled(self) -> None:
        """Until every request fired has its answer (or its error)."""
        if self.in_flight:
            self._settled.clear()
            await self._settled.wait()

    def fire(self, due: float) -> None:
        self.tally.sent += 1
        self.in_flight += 1
        self._dispatch(due)

    def _dispatch(self, due: float) -> None:
        if self.idle:
            self.idle.pop().send(due)
        elif self.connections < self.limit:
            self.connections += 1
            self.peak_connections = max(self.peak_connections, self.connections)
            task = asyncio.get_running_loop().create_task(self._connect(due))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
        else:
            self.backlog.append(due)
            self.peak_backlog = max(self.peak_backlog, len(self.backlog))

    async def _connect(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(lambda: SoakConnection(self),
                                                         self.host, self.port)
        except OSError as exc:
            self.connections -= 1
            self._finished_one()
            self.tally.error(f"connect: {exc!r}")
            return
        connection.send(due)

    def answered(self, connection: SoakConnection, due: float, answer: tuple[int, bool],
                 head: bytes) -> None:
        now = perf()
        status, keep_alive = answer
        self._finished_one()
        if 200 <= status < 300:
            self.tally.success(now - due, now - connection.written_at)
        else:
            self.tally.error(f"HTTP {status}: {head!r}")
        if not keep_alive:
            assert connection.transport is not None
            connection.transport.close()  # connection_lost takes it out of the count
        elif self.backlog:
            connection.send(self.backlog.popleft())
        else:
            connection.idle_since = now
            self.idle.append(connection)

    def lost(self, connection: SoakConnection, exc: Exception | None) -> None:
        self.connections -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.due is not None:
            connection.due = None
            self._finished_one()
            self.tally.error(f"connection lost: {exc!r}")
        if self.backlog and self.connections < self.limit:
            self._dispatch(self.backlog.popleft())

    def reap(self, now: float) -> None:
        """Close connections idle for long, before the server would."""
        for connection in [c for c in self.idle if now - c.idle_since > IDLE_CLOSE_S]:
            self.idle.remove(connection)
            if connection.transport is not None:
                connection.transport.close()

    def close(self) -> None:
        for connection in self.idle:
            if connection.transport is not None:
                connection.transport.close()
        self.idle.clear()


# -- the soak ------------------------------------------------------------------------------


def slope_mib_per_min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of RSS (MiB) over time, per minute."""
    if len(samples) < 3:
        return None
    times, values = zip(*samples, strict=True)
    return statistics.linear_regression(times, values).slope * 60


@dataclass(slots=True)
class Soak:
    rate: float
    duration_s: float
    interval_s: float
    ai1net: Service
    mock: Service
    tally: Tally = field(default_factory=Tally)
    rss: list[tuple[float, float]] = field(default_factory=list)
    windows: list[dict[str, Any]] = field(default_factory=list)

    async def run(self, client: OpenLoop) -> dict[str, Any]:
        began = perf()
        sampler = asyncio.create_task(self.sample(client, began))
        await self.drive(client, began)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await client.settled()
        unanswered = client.in_flight
        for _ in range(unanswered):
            self.tally.error(f"unanswered {DRAIN_S:.0f} s after the load stopped")
        sampler.cancel()
        client.close()
        await asyncio.sleep(0.1)  # let the transports close
        return {"elapsed_s": round(perf() - began, 2), "unanswered": unanswered,
                "peak_connections": client.peak_connections,
                "peak_backlog": client.peak_backlog}

    async def drive(self, client: OpenLoop, began: float) -> None:
        """Fire request i at began + i/rate until the duration is over (catching up when the
        loop was late, never skipping)."""
        end, number = began + self.duration_s, 0
        while True:
            now = perf()
            due = began + number / self.rate
            while due <= now and due < end:
                client.fire(due)
                number += 1
                due = began + number / self.rate
            if due >= end:
                return
            await asyncio.sleep(max(0.0, due - perf()))

    async def sample(self, client: OpenLoop, began: float) -> None:
        cpu = self.cpu_window()
        last_sent = last_at = 0.0
        next_report = began + self.interval_s
        tick = began
        while True:
            tick += 1.0
            await asyncio.sleep(max(0.0, tick - perf()))
            now = perf()
            value = rss_mib(self.ai1net)
            if value is not None:
                self.rss.append((round(now - began, 2), value))
            client.reap(now)
            if now >= next_report - 0.01:
                self.report(client, cpu.close(), now - began, now - (last_at or began),
                            self.tally.sent - last_sent)
                last_sent, last_at, cpu = self.tally.sent, now, self.cpu_window()
                next_report += self.interval_s

    def cpu_window(self) -> CpuWindow:
        return CpuWindow({"client": os.getpid(), "mock": self.mock.pid, "sut": self.ai1net.pid})

    def report(self, client: OpenLoop, usage: dict[str, Any], at: float, span: float,
               sent: float) -> None:
        window, self.tally.window = self.tally.window, []
        summary = summarize(window, errors=0, elapsed_s=span)
        layout = {f"cpu{MOCK_CORE}": ["client", "mock"], f"cpu{SUT_CORE}": ["sut"]}
        other = other_load(usage, layout)
        rss = self.rss[-1][1] if self.rss else None
        self.windows.append({
            "at_s": round(at, 1), "sent_rps": round(sent / span, 1),
            "answered_rps": round(summary.rps, 1), "ok": self.tally.ok,
            "errors": self.tally.errors, "p50_ms": summary.p50_ms, "p99_ms": summary.p99_ms,
            "rss_mib": rss, "connections": client.connections, "backlog": len(client.backlog),
            **usage, "other_load_pct": other})
        print(f"[soak {at:5.0f}/{self.duration_s:.0f} s] sent {self.tally.sent:,} ok "
              f"{self.tally.ok:,} errors {self.tally.errors}  {sent / span:,.0f} req/s "
              f"(target {self.rate:,.0f})  p50 {summary.p50_ms:.2f} ms p99 "
              f"{summary.p99_ms:.2f} ms  RSS {rss or 0:.1f} MiB  AI1NET CPU "
              f"{usage['cpu_pct'].get('sut', 0):.0f}%  other load cpu0/cpu1 "
              f"{other.get('cpu0', 0):.0f}/{other.get('cpu1', 0):.0f}%  "
              f"conns {client.connections} backlog {len(client.backlog)}",
              file=sys.stderr, flush=True)


def pin_self() -> None:
    """This process (the open-loop client) joins the mock's core, as bench.run's clients do."""
    if TASKSET is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {MOCK_CORE})


def count_rows(database: str, key_id: str) -> dict[str, Any]:
    connection = sqlite3.connect(database)
    try:
        by_outcome = dict(connection.execute(
            "SELECT outcome, COUNT(*) FROM usage_events WHERE key_id = ? GROUP BY outcome",
            (key_id,)).fetchall())
        total = connection.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0]
    finally:
        connection.close()
    return {"soak_key": sum(by_outcome.values()), "soak_key_by_outcome": by_outcome,
            "all_keys": total}


def log_problems(service: Service) -> dict[str, Any]:
    """WARNING and worse lines of AI1NET's JSON log, counted by level, the first few kept."""
    levels: Counter[str] = Counter()
    first: list[str] = []
    for line in service.log_path.read_text(errors="replace").splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        level = record.get("level", "") if isinstance(record, dict) else ""
        if level in ("WARNING", "ERROR", "CRITICAL"):
            levels[level] += 1
            if len(first) < 5:
                first.append(f"{level} {record.get('msg', '')}"[:300])
    return {"by_level": dict(levels), "first": first}


def soak(args: argparse.Namespace) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    idle = wait_until_idle(args.wait_idle)
    extra_env = dict(item.split("=", 1) for item in args.ai1net_env)
    progress = Progress(total=1 if args.rps else 2)
    bench = Bench(Options(duration_s=args.probe, warmup_s=1.0, concurrency=args.concurrency,
                          ai1net_env=extra_env), progress)
    results: dict[str, Any] = {"started_at": started_at, "machine": machine(),
                               "options": vars(args), "idle_before_pct": idle}
    with ExitStack() as stack:
        mock, mock_url = start_mock(stack, "soak-mock", args.delay_ms)
        admin_key = secrets.token_urlsafe(24)
        progress.start("AI1NET start-up", 0)
        ai1net = gateway.start(admin_key=admin_key, log_dir=LOG_DIR, name="soak-ai1net",
                               extra_env=extra_env)
        stack.callback(shutil.rmtree, ai1net.data_dir, ignore_errors=True)
        stack.callback(ai1net.service.stop)
        progress.done(f"ready in {ai1net.startup_s:.2f} s")
        key = ai1net.prepare(admin_key, mock_url)
        url = f"{ai1net.http_url}/v1/generate"
        if args.rps:
            rate = args.rps
        else:
            probe = bench.throughput("maximum", Target("http", url, key=key, watch={
                "mock": mock, "sut": ai1net.service}))
            if "summary" not in probe:
                raise RuntimeError(f"the throughput probe failed: {probe.get('failed')}")
            results["probe"] = probe
            rate = max(1.0, args.fraction * probe["summary"]["rps"])
        key_id, soak_key = ai1net.mint_key(admin_key, "soak")
        results["rate_rps"] = rate
        print(f"soak: {rate:,.0f} req/s open loop for {args.duration:.0f} s "
              f"(AI1NET pid {ai1net.service.pid})", file=sys.stderr, flush=True)
        pin_self()
        tally = Tally()
        client = OpenLoop(url, orjson.dumps({"model": gateway.MODEL, "input": "hello"}),
                          soak_key, tally, args.max_connections)
        run = Soak(rate, args.duration, args.interval, ai1net.service, mock, tally)
        import uvloop

        results["load"] = uvloop.run(run.run(client))
        peak = ai1net.service.peak_rss_mib()
        results["exit_status"] = ai1net.service.stop(timeout=30.0)  # the ledger flushes
        results["usage_rows"] = count_rows(str(ai1net.data_dir / "bench.db"), key_id)
        results["log"] = log_problems(ai1net.service)
    results.update(outcome(run, peak))
    return results


def outcome(run: Soak, peak: float | None) -> dict[str, Any]:
    tally = run.tally
    half = [(t, v) for t, v in run.rss if t >= run.duration_s / 2]
    values = [v for _, v in run.rss]
    due = summarize(tally.due_latency, errors=tally.errors, elapsed_s=run.duration_s)
    service = summarize(tally.service_latency, errors=tally.errors, elapsed_s=run.duration_s)
    return {
        "calls": {"sent": tally.sent, "ok": tally.ok, "errors": tally.errors,
                  "error_kinds": dict(tally.error_kinds.most_common(10))},
        "latency_from_due": due.as_dict(), "latency_from_write": service.as_dict(),
        "rss": {"first_mib": values[0] if values else None,
                "last_mib": values[-1] if values else None,
                "min_mib": min(values, default=None), "max_mib": max(values, default=None),
                "peak_hwm_mib": peak,
                "slope_mib_per_min": slope_mib_per_min(run.rss),
                "slope_second_half_mib_per_min": slope_mib_per_min(half),
                "samples": run.rss},
        "windows": run.windows,
    }


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    calls, rows = results["calls"], results["usage_rows"]
    slope = results["rss"]["slope_second_half_mib_per_min"]
    return [
        {"what": "errors", "value": calls["errors"], "target": "0",
         "met": calls["errors"] == 0, "enforced": True},
        {"what": "usage_events rows of the soak key = successful calls",
         "value": f"{rows['soak_key']} rows / {calls['ok']} ok",
         "target": "equal", "met": rows["soak_key"] == calls["ok"], "enforced": True},
        {"what": "AI1NET exit status after SIGTERM", "value": results["exit_status"],
         "target": "0", "met": results["exit_status"] == 0, "enforced": True},
        {"what": "RSS slope, second half (MiB/min)",
         "value": None if slope is None else round(slope, 3),
         "target": f"|slope| ≤ {FLAT_MIB_PER_MIN}",
         "met": None if slope is None else abs(slope) <= FLAT_MIB_PER_MIN, "enforced": False},
    ]


def summary_text(results: dict[str, Any]) -> str:
    calls, rss, rows = results["calls"], results["rss"], results["usage_rows"]
    due, written, load = results["latency_from_due"], results["latency_from_write"], \
        results["load"]
    probe = (results.get("probe") or {}).get("summary", {}).get("rps")

    def num(value: float | None, spec: str = ".2f") -> str:
        return "—" if value is None else format(value, spec)

    lines = [
        f"rate: {results['rate_rps']:,.1f} req/s open loop"
        + (f" (half of the measured maximum {probe:,.0f} req/s at c=32)" if probe else
           " (given)") + f" for {results['options']['duration']:.0f} s",
        f"calls: {calls['sent']:,} sent, {calls['ok']:,} ok, {calls['errors']} errors"
        + (f" {calls['error_kinds']}" if calls["errors"] else "")
        + f"; peak connections {load['peak_connections']}, peak backlog {load['peak_backlog']}",
        f"latency from due time: p50 {num(due['p50_ms'])} ms, p99 {num(due['p99_ms'])} ms, "
        f"p99.9 {num(due['p999_ms'])} ms, max {num(due['max_ms'])} ms; from write: p50 "
        f"{num(written['p50_ms'])} ms, p99 {num(written['p99_ms'])} ms",
        f"AI1NET RSS: {num(rss['first_mib'], '.1f')} → {num(rss['last_mib'], '.1f')} MiB "
        f"(min {num(rss['min_mib'], '.1f')}, max {num(rss['max_mib'], '.1f')}, peak "
        f"{num(rss['peak_hwm_mib'], '.1f')}); slope {num(rss['slope_mib_per_min'], '+.3f')} "
        f"MiB/min over the run, {num(rss['slope_second_half_mib_per_min'], '+.3f')} over "
        "its second half",
        f"usage_events: {rows['soak_key']:,} rows for the soak key "
        f"{rows['soak_key_by_outcome']} vs {calls['ok']:,} successful calls "
        f"({rows['all_keys']:,} rows in all, the probe's included); AI1NET exit status "
        f"{results['exit_status']} after SIGTERM",
        f"AI1NET log: {results['log']['by_level'] or 'no warnings or errors'}"
        + (f" first: {results['log']['first']}" if results["log"]["first"] else ""),
        "",
    ]
    for check in results["checks"]:
        verdict = {True: "yes", False: "NO", None: "n/a"}[check["met"]]
        lines.append(f"  {check['what']}: {check['value']}  (wanted {check['target']}) "
                     f"{verdict}{'' if check['enforced'] else ' (reported, not enforced)'}")
    busy = max(results["idle_before_pct"].values(), default=0)
    others = [w["other_load_pct"] for w in results["windows"]]
    worst = max((max(o.values(), default=0) for o in others), default=0)
    if busy >= 15 or worst >= 15:
        lines.append(f"WARNING: other load on the machine (before: {results['idle_before_pct']}"
                     f"; worst window: {worst:.0f}% of a core); latency and RSS may be noisy.")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0,
                        help="seconds of open-loop load (default 600; 60 for a quick check)")
    parser.add_argument("--rps", type=float, default=None,
                        help="requests/s to send (default: --fraction of the measured maximum)")
    parser.add_argument("--fraction", type=float, default=0.5,
                        help="share of the measured maximum to send (default 0.5)")
    parser.add_argument("--probe", type=float, default=5.0,
                        help="seconds of the closed-loop maximum pass (default 5)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="concurrency of the maximum pass (default 32)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="seconds between progress lines (default 10)")
    parser.add_argument("--max-connections", type=int, default=256,
                        help="connections the open-loop client may open (default 256)")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="the mock provider's delay before answering")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="wait up to this many seconds for an idle machine first")
    parser.add_argument("--ai1net-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for AI1NET (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    results = soak(args)
    results["checks"] = checks(results)
    path = RESULTS / "soak.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(summary_text(results))
    print(f"\nwrote {path}")
    if not all(check["met"] for check in results["checks"] if check["enforced"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
