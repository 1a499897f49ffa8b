"""``python -m bench.streams`` (``make bench-streams``): how many slow streams one worker
holds (issue 17, item 6).

The slow provider (``bench/slow_provider.py``: a token at once, then one a second) and this
load run on core 0, one AI1NET worker (SQLite) on core 1. First, at idle,
``--probes`` new streaming calls at ``--probe-rate`` a second, each timed to its first
delta (TTFC) and closed. Then ``--streams`` streaming calls over HTTP (NDJSON, one
connection each: two sockets each in AI1NET, the caller's and the provider's) are opened at
``--ramp`` a second and held; once every one has its first delta, AI1NET's RSS is sampled
while the same probes run again, and the deltas the held streams receive a second are
counted (10,000 streams at a token a second: 10,000 deltas a second relayed). The held
model is registered with ``max_concurrency`` 10,000 (the most a model may ask) and the
probes call another model on the same provider host. The probes run in a process of their
own (on core 0 too), so the pauses of the process holding the streams are not counted as
the gateway's; that process also keeps its collector still while it holds them.

Checked: no held stream failed or ended early, AI1NET's RSS with every stream held within
1 GiB, and the probes' p99 TTFC under load within 50 ms of the idle one. The open-file
limits it needs are raised first (this process's hard limit too when it may: it is what
AI1NET inherits and raises its soft limit to). Writes ``bench/results/streams.json``; the
exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import secrets
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import gateway
from bench.passes import MOCK_CORE
from bench.procs import PeakRss, Service, free_port, rss_mib, spawn, wait_tcp
from bench.run import LOG_DIR, RESULTS, python_module

perf = time.perf_counter
RSS_BOUND_MIB = 1024
ADDED_P99_BOUND_MS = 50.0
HELD, PROBE = "held", "probe"


def raise_open_files(wanted: int) -> tuple[int, int]:
    """This process's open-file limits raised to ``wanted`` where allowed (the hard one
    only as root); the limits now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        with contextlib.suppress(ValueError, OSError):  # only root may raise it
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, wanted))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@dataclass(slots=True)
class Tally:
    """What the held streams did."""

    opened: int = 0
    first: int = 0  # streams that have had their first delta
    deltas: int = 0
    failed: int = 0
    ended: int = 0  # ended before they were let go
    first_failure: str | None = None
    all_first: asyncio.Event = field(default_factory=asyncio.Event)
    target: int = 0

    def fail(self, why: str) -> None:
        self.failed += 1
        if self.first_failure is None:
            self.first_failure = why[:300]


class Stream(asyncio.Protocol):
    """One streaming call on its own connection (a bare protocol: 10,000 of them must not
    cost the load more than the gateway)."""

    def __init__(self, request: bytes, tally: Tally | None,
                 first: asyncio.Future[float] | None = None) -> None:
        self._request, self._tally, self._first = request, tally, first
        self._started = 0.0
        self._head = bytearray()
        self._got_first = False
        self._done = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._started = perf()
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self._head:
            self._head += data[:64]
            if not self._head.startswith(b"HTTP/1.1 200"):
                self._failed(f"answer {bytes(self._head)!r}")
                return
        deltas = data.count(b'"delta"')
        if deltas and not self._got_first:
            self._got_first = True
            if self._first is not None and not self._first.done():
                self._first.set_result(perf() - self._started)
            if self._tally is not None:
                self._tally.first += 1
                if self._tally.first >= self._tally.target:
                    self._tally.all_first.set()
        if self._tally is not None:
            self._tally.deltas += deltas
            if b'"done"' in data or b'"error"' in data:
                self._done = True
                self._tally.ended += 1
                if b'"error"' in data:
                    self._tally.fail(f"ended with {data[-300:]!r}")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done and not self._got_first:
            self._failed(f"closed before a delta: {exc!r}")

    def _failed(self, why: str) -> None:
        self._done = True
        if self._tally is not None:
            self._tally.fail(why)
        if self._first is not None and not self._first.done():
            self._first.set_exception(RuntimeError(why))
        if self.transport is not None:
            self.transport.close()


def request_bytes(port: int, key: str, model: str) -> bytes:
    body = orjson.dumps({"model": model, "input": "hi", "stream": True})
    return (f"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@dataclass(slots=True)
class Probes:
    ttfc_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def probe_ttfc(port: int, key: str, count: int, rate: float) -> Probes:
    """``count`` new streaming calls at ``rate`` a second, each closed at its first delta;
    their times to it (ms), and why any failed."""
    loop = asyncio.get_running_loop()
    request = request_bytes(port, key, PROBE)
    probes = Probes()

    async def one() -> None:
        first: asyncio.Future[float] = loop.create_future()
        try:
            transport, _ = await loop.create_connection(
                lambda: Stream(request, None, first), "127.0.0.1", port)
        except OSError as exc:
            probes.failures.append(f"connect: {exc!r}")
            return
        try:
            async with asyncio.timeout(30):
                probes.ttfc_ms.append((await first) * 1000)
        except (RuntimeError, TimeoutError) as exc:
            probes.failures.append(repr(exc)[:300])
        finally:
            transport.close()

    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(one()))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    return probes


async def open_streams(port: int, key: str, tally: Tally, count: int,
                       ramp: float) -> list[asyncio.Transport]:
    """``count`` held streams, ``ramp`` a second (a slow connect does not hold up the
    next ones)."""
    loop = asyncio.get_running_loop()
    request = request_bytes(port, key, HELD)
    tally.target = count
    transports: list[asyncio.Transport] = []

    async def one() -> None:
        try:
            transport, _ = await loop.create_connection(
                lambda: Stream(request, tally), "127.0.0.1", port)
        except OSError as exc:
            tally.fail(f"connect: {exc!r}")
            return
        transports.append(transport)
        tally.opened += 1

    started, batch, tasks = perf(), max(1, int(ramp / 50)), []
    for n in range(0, count, batch):
        tasks += [asyncio.create_task(one()) for _ in range(min(batch, count - n))]
        await asyncio.sleep(max(0.0, started + (n + batch) / ramp - perf()))
    await asyncio.gather(*tasks)
    return transports


async def hold_grpc(target: str, key: str, tally: Tally, count: int, ramp: float,
                    connections: int) -> list[asyncio.Task[None]]:
    """``count`` held GenerateStream calls, ``ramp`` a second, over a few HTTP/2
    connections (one socket each in AI1NET instead of one a stream)."""
    from grpc import aio

    from ai1net.v1 import generate_pb2, generate_pb2_grpc

    tally.target = count
    channels = [aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(connections)]
    stubs = [generate_pb2_grpc.GenerateServiceStub(channel) for channel in channels]
    request = generate_pb2.GenerateRequest(model=HELD, input="hi")

    async def one(n: int) -> None:
        first = False
        try:
            async for reply in stubs[n % len(stubs)].GenerateStream(
                    request, metadata=(("x-api-key", key),)):
                if reply.HasField("delta"):
                    tally.deltas += 1
                    if not first:
                        first = True
                        tally.first += 1
                        if tally.first >= tally.target:
                            tally.all_first.set()
                if reply.done:
                    tally.ended += 1
        except aio.AioRpcError as exc:
            tally.fail(f"{exc.code().name}: {exc.details()}")

    started, batch, tasks = perf(), max(1, int(ramp / 50)), []
    for n in range(0, count, batch):
        tasks += [asyncio.create_task(one(n + i)) for i in range(min(batch, count - n))]
        tally.opened = len(tasks)
        await asyncio.sleep(max(0.0, started + (n + batch) / ramp - perf()))
    return tasks


async def probe_elsewhere(port: int, key: str, count: int, rate: float) -> Probes:
    """``probe_ttfc`` in a process of its own (on the load's core): the new calls' times
    are the gateway's, not the pauses of the process holding 10,000 streams."""
    process = await asyncio.create_subprocess_exec(
        *python_module("bench.streams", "--probe-only", str(port), "--probes", str(count),
                       "--probe-rate", str(rate)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate(key.encode())
    if process.returncode:
        raise RuntimeError(f"the probe process exited {process.returncode}")
    found = orjson.loads(out)
    return Probes(found["ttfc_ms"], found["failures"])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ttfc_summary(probes: Probes) -> dict[str, Any]:
    values = probes.ttfc_ms or [float("inf")]
    return {"p50_ms": round(statistics.median(values), 1),
            "p99_ms": round(quantile(values, 0.99), 1), "max_ms": round(max(values), 1),
            "failed": len(probes.failures), "first_failure": next(iter(probes.failures), None)}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def measure(args: argparse.Namespace, sut: gateway.Gateway, provider: Service,
                  key: str) -> dict[str, Any]:
    port = int(sut.http_url.rsplit(":", 1)[1])
    pid = sut.service.pid
    pids = {"gateway": pid, "provider": provider.pid, "load": os.getpid()}
    await probe_elsewhere(port, key, 20, args.probe_rate)  # warm-up
    idle_rss = rss_mib(sut.service)
    idle = await probe_elsewhere(port, key, args.probes, args.probe_rate)
    # What the held streams leave in this process is long-lived: the collector walking it
    # would only pause the reading of them.
    gc.collect()
    gc.freeze()
    gc.disable()
    tally = Tally()
    ramp_started = perf()
    if args.surface == "http":
        transports = await open_streams(port, key, tally, args.streams, args.ramp)
        calls: list[asyncio.Task[None]] = []
    else:
        transports = []
        calls = await hold_grpc(sut.grpc_target, key, tally, args.streams, args.ramp,
                                args.connections)
    try:
        async with asyncio.timeout(args.stream_tokens / 2):
            await tally.all_first.wait()
    except TimeoutError:
        pass
    ramp_s = perf() - ramp_started
    held_at = (tally.first, tally.failed)
    deltas_before, window = tally.deltas, perf()
    cpu_before = {name: cpu_s(p) for name, p in pids.items()}
    with PeakRss(pid, interval=0.1) as peak:
        loaded = await probe_elsewhere(port, key, args.probes, args.probe_rate)
        held_rss = rss_mib(sut.service)
        fds = open_fds(pid)
    window = perf() - window
    delta_rate = (tally.deltas - deltas_before) / window
    cpu_share = {name: round((cpu_s(p) - cpu_before[name]) / window, 2)
                 for name, p in pids.items()}
    ended_early, failed = tally.ended, tally.failed
    for transport in transports:
        transport.close()
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    if idle_rss is None or held_rss is None:
        raise RuntimeError("AI1NET exited during the run")
    return {
        "streams": args.streams, "surface": args.surface, "opened": tally.opened,
        "held": held_at[0],
        "failed": failed, "ended_early": ended_early, "first_failure": tally.first_failure,
        "ramp_s": round(ramp_s, 1), "open_fds": fds,
        "rss_idle_mib": idle_rss, "rss_held_mib": held_rss, "rss_peak_mib": peak.peak_mib,
        "rss_per_stream_kib": round((held_rss - idle_rss) * 1024 / max(1, held_at[0]), 1),
        "deltas_per_s": round(delta_rate), "cpu_share": cpu_share,
        "ttfc_idle": ttfc_summary(idle), "ttfc_loaded": ttfc_summary(loaded),
        "added_p99_ms": round(quantile(loaded.ttfc_ms or [float("inf")], 0.99)
                              - quantile(idle.ttfc_ms or [0.0], 0.99), 1),
    }


def start_provider(stack: ExitStack, tokens: int) -> tuple[Service, str]:
    port = free_port()
    provider = spawn("streams-provider", python_module(
        "bench.slow_provider", "--port", str(port), "--tokens", str(tokens)),
        core=MOCK_CORE, log_dir=LOG_DIR)
    stack.callback(provider.stop)
    wait_tcp(provider, port)
    return provider, f"http://127.0.0.1:{port}/v1/generate"


def checks(result: dict[str, Any]) -> list[str]:
    failed = []
    if result["held"] < result["streams"] or result["failed"] or result["ended_early"]:
        failed.append(f"{result['held']} of {result['streams']} held, {result['failed']} "
                      f"failed, {result['ended_early']} ended early")
    if result["rss_peak_mib"] > RSS_BOUND_MIB:
        failed.append(f"peak RSS {result['rss_peak_mib']} MiB > {RSS_BOUND_MIB}")
    for phase in ("ttfc_idle", "ttfc_loaded"):
        if result[phase]["failed"]:
            failed.append(f"{result[phase]['failed']} probes failed ({phase}): "
                          f"{result[phase]['first_failure']}")
    if result["first_failure"]:
        failed.append(f"first held stream failure: {result['first_failure']}")
    if result["added_p99_ms"] > ADDED_P99_BOUND_MS:
        failed.append(f"p99 TTFC added {result['added_p99_ms']} ms > {ADDED_P99_BOUND_MS}")
    return failed


def report(result: dict[str, Any], failed: list[str]) -> str:
    idle, loaded = result["ttfc_idle"], result["ttfc_loaded"]
    return "\n".join([
        f"{result['surface']} streams held: {result['held']} of {result['streams']} "
        f"(failed {result['failed']}, "
        f"ended early {result['ended_early']}; opened in {result['ramp_s']} s; "
        f"{result['open_fds']} open files in AI1NET)",
        f"AI1NET RSS: idle {result['rss_idle_mib']} MiB, every stream held "
        f"{result['rss_held_mib']} MiB (peak {result['rss_peak_mib']} MiB): "
        f"{result['rss_per_stream_kib']} KiB a stream",
        f"relayed: {result['deltas_per_s']} deltas/s; CPU (share of a core): "
        + ", ".join(f"{name} {share:.0%}" for name, share in result["cpu_share"].items()),
        f"new calls' TTFC: idle p50 {idle['p50_ms']} / p99 {idle['p99_ms']} ms; loaded p50 "
        f"{loaded['p50_ms']} / p99 {loaded['p99_ms']} ms: p99 added {result['added_p99_ms']} ms",
        "checks: " + ("all passed" if not failed else "; ".join(failed)),
    ])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--surface", choices=("grpc", "http"), default="grpc",
                        help="the held streams' (new calls are HTTP either way)")
    parser.add_argument("--connections", type=int, default=20,
                        help="gRPC: the HTTP/2 connections the held streams share")
    parser.add_argument("--ramp", type=float, default=500.0, help="streams opened a second")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--probe-rate", type=float, default=10.0)
    parser.add_argument("--stream-tokens", type=int, default=300,
                        help="a held stream's length in tokens (seconds)")
    parser.add_argument("--probe-only", type=int, metavar="PORT",
                        help="only time --probes new calls to PORT (the key on stdin) and "
                        "print them as JSON")
    args = parser.parse_args(argv)
    if args.probe_only:
        key = sys.stdin.read().strip()
        probes = asyncio.run(probe_ttfc(args.probe_only, key, args.probes, args.probe_rate))
        sys.stdout.buffer.write(orjson.dumps({"ttfc_ms": probes.ttfc_ms,
                                              "failures": probes.failures}))
        return
    limits = raise_open_files(2 * args.streams + 4096)
    import uvloop

    os.sched_setaffinity(0, {MOCK_CORE})
    admin = "ai1_bench_admin_" + secrets.token_hex(8)
    with ExitStack() as stack:
        provider, slow_url = start_provider(stack, args.stream_tokens)
        sut = gateway.start(admin_key=admin, log_dir=LOG_DIR, name="streams-ai1net",
                            extra_env={"AI1NET_LOG_LEVEL": "WARNING"})
        stack.callback(sut.stop)
        sut.register(admin, HELD, slow_url, max_concurrency=10_000, timeout_ms=600_000)
        sut.register(admin, PROBE, slow_url, timeout_ms=600_000)
        _key_id, key = sut.mint_key(admin, "streams")
        result = uvloop.run(measure(args, sut, provider, key))
    result["open_file_limit"] = limits[0]
    failed = checks(result)
    result["checks_failed"] = failed
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "streams.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(report(result, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
