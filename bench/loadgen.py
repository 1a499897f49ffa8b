"""Load generators, run as their own process: ``python -m bench.loadgen KIND ...``.

``http``: N keep-alive connections driven by a bare asyncio protocol (no client library in the
way, one request in flight per connection, the next written from the callback that completes
the previous one), so one core of client outruns any Python server. ``grpc``: N tasks on one
grpc.aio channel, raw bytes in and out. ``http-stream`` and ``grpc-stream``: time to the first
chunk and to the end of the stream. ``grpc-h2load``: the ``grpc`` load from h2load instead
(``bench/h2load.py``), a cross-check that the grpc.aio client is not the limit.

Every request's time is taken with ``perf_counter``; the process prints one JSON object: the
summary of the measured window (after a warm-up), its own CPU use, the busy share of each core
and the CPU share of each ``--watch`` process.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from bench.stats import CpuWindow, summarize

perf = time.perf_counter
CLIENTS = {"http": "asyncio protocol", "grpc": "grpc.aio", "http-stream": "aiohttp",
           "grpc-stream": "grpc.aio", "grpc-h2load": "h2load"}


@dataclass(slots=True)
class Recorder:
    latencies: list[float] = field(default_factory=list)
    ttfc: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def error(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what[:300]


@dataclass(frozen=True, slots=True)
class Load:
    concurrency: int
    duration_s: float
    warmup_s: float


# -- HTTP/1.1 on a bare protocol -----------------------------------------------------------


def http_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}",
             f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def complete_answer(buffer: bytearray) -> tuple[int, bool] | None:
    """(status, keep-alive) once one whole answer is buffered (one request in flight)."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    body_length = len(buffer) - end - 4
    marker = head.find(b"\r\ncontent-length:")
    if marker >= 0:
        stop = head.find(b"\r\n", marker + 2)
        length = int(head[marker + 17:stop if stop > 0 else None])
        if body_length < length:
            return None
    elif b"chunked" in head and not buffer.endswith(b"\r\n0\r\n\r\n"):
        return None
    return int(head[9:12]), b"connection: close" not in head


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection writing the same request again as soon as an answer ends."""

    def __init__(self, request: bytes, deadline: float, record: Recorder,
                 done: asyncio.Future[None]) -> None:
        self._request = request
        self._deadline = deadline
        self._record = record
        self._done = done
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._started = perf()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        answer = self._complete_answer()
        if answer is None:
            return
        status, keep_alive = answer
        now = perf()
        if 200 <= status < 300:
            self._record.latencies.append(now - self._started)
        else:
            self._record.error(f"HTTP {status}: {bytes(self._buffer[:300])!r}")
        self._buffer.clear()
        if now < self._deadline and keep_alive:
            self._send()
        else:
            self._finish()

    def _complete_answer(self) -> tuple[int, bool] | None:
        return complete_answer(self._buffer)

    def _finish(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            if perf() < self._deadline:
                self._record.error(f"connection lost: {exc!r}")
            self._done.set_result(None)


def factory(connection: HttpConnection) -> Callable[[], HttpConnection]:
    return lambda: connection


async def http_worker(url: str, body: bytes, headers: dict[str, str], deadline: float,
                      record: Recorder) -> None:
    loop = asyncio.get_running_loop()
    host, port, request = http_request(url, body, headers)
    while perf() < deadline:
        done: asyncio.Future[None] = loop.create_future()
        try:
            await loop.create_connection(factory(HttpConnection(request, deadline, record, done)),
                                         host, port)
        except OSError as exc:
            record.error(f"connect: {exc!r}")
            await asyncio.sleep(0.01)
            continue
        await done


# -- gRPC ----------------------------------------------------------------------------------


async def grpc_worker(call: Any, payload: bytes, metadata: tuple[tuple[str, str], ...],
                      deadline: float, record: Recorder) -> None:
    import grpc

    while (started := perf()) < deadline:
        try:
            await call(payload, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            record.error(f"{exc.code().name}: {exc.details()}")
            continue
        record.latencies.append(perf() - started)


async def grpc_stream_worker(call: Any, payload: bytes, metadata: tuple[tuple[str, str], ...],
                             deadline: float, record: Recorder) -> None:
    import grpc

    end_of_stream = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
    while (started := perf()) < deadline:
        try:
            stream = call(payload, metadata=metadata)
            first = await stream.read()
            first_at = perf()
            while first is not end_of_stream and await stream.read() is not end_of_stream:
                pass
        except grpc.aio.AioRpcError as exc:
            record.error(f"{exc.code().name}: {exc.details()}")
            continue
        record.ttfc.append(first_at - started)
        record.latencies.append(perf() - started)


async def http_stream_worker(session: Any, url: str, body: bytes, headers: dict[str, str],
                             deadline: float, record: Recorder) -> None:
    while (started := perf()) < deadline:
        async with session.post(url, data=body, headers=headers) as response:
            first = await response.content.readline()
            first_at = perf()
            rest = await response.read()
            # An error object ends a stream that failed: NDJSON, or SSE (AI1NET's, OpenAI's).
            failed = first.startswith((b'{"error"', b'data: {"error"')) \
                or b'{"error"' in rest[-4096:]
            if response.status != 200 or failed or not rest:
                record.error(f"HTTP {response.status}: {(first + rest)[:300]!r}")
                continue
        record.ttfc.append(first_at - started)
        record.latencies.append(perf() - started)


# -- driving a window ----------------------------------------------------------------------

Worker = Callable[[float, Recorder], Awaitable[None]]


async def window(worker: Worker, concurrency: int, seconds: float) -> tuple[Recorder, float]:
    record = Recorder()
    started = perf()
    deadline = started + seconds
    await asyncio.gather(*(worker(deadline, record) for _ in range(concurrency)))
    return record, perf() - started


async def measure(worker: Worker, load: Load, watch: dict[str, int]) -> dict[str, Any]:
    if load.warmup_s > 0:
        await window(worker, load.concurrency, load.warmup_s)
    own = resource.getrusage(resource.RUSAGE_SELF)
    cpu = CpuWindow(watch)
    record, elapsed = await window(worker, load.concurrency, load.duration_s)
    usage = cpu.close()
    own_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (own_after.ru_utime + own_after.ru_stime) - (own.ru_utime + own.ru_stime)
    usage["cpu_pct"]["client"] = round(100 * client_cpu / elapsed, 1)
    result: dict[str, Any] = {
        "summary": summarize(record.latencies, errors=record.errors,
                             elapsed_s=elapsed).as_dict(),
        "first_error": record.first_error, **usage,
    }
    if record.ttfc:
        result["ttfc"] = summarize(record.ttfc, errors=record.errors, elapsed_s=elapsed).as_dict()
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    load = Load(args.concurrency, args.duration, args.warmup)
    body = args.body.encode()
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    if args.kind == "http":
        return await measure(lambda d, r: http_worker(args.target, body, headers, d, r),
                             load, args.watch)
    if args.kind == "http-stream":
        import aiohttp

        async with aiohttp.ClientSession() as session:
            return await measure(
                lambda d, r: http_stream_worker(session, args.target, body, headers, d, r),
                load, args.watch)
    return await run_grpc(args, load)


async def run_grpc(args: argparse.Namespace, load: Load) -> dict[str, Any]:
    import grpc

    from ai1net.v1 import generate_pb2

    request = orjson.loads(args.body)
    payload = generate_pb2.GenerateRequest(model=request.get("model", ""),
                                           input=request["input"]).SerializeToString()
    if args.kind == "grpc-h2load":
        from bench import h2load

        return h2load.measure(args.target, f"/{args.service}/Generate", payload,
                              concurrency=load.concurrency, duration_s=load.duration_s,
                              warmup_s=load.warmup_s, key=args.key, watch=args.watch)
    metadata = (("authorization", f"Bearer {args.key}"),) if args.key else ()
    async with grpc.aio.insecure_channel(args.target) as channel:
        if args.kind == "grpc":
            call = channel.unary_unary(f"/{args.service}/Generate", None, None)
            return await measure(lambda d, r: grpc_worker(call, payload, metadata, d, r),
                                 load, args.watch)
        stream = channel.unary_stream(f"/{args.service}/GenerateStream", None, None)
        return await measure(lambda d, r: grpc_stream_worker(stream, payload, metadata, d, r),
                             load, args.watch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("http", "grpc", "http-stream", "grpc-stream",
                                         "grpc-h2load"))
    parser.add_argument("--target", required=True, help="a URL (http) or HOST:PORT (grpc)")
    parser.add_argument("--body", default='{"model": "bench", "input": "hello"}')
    parser.add_argument("--key", default="")
    parser.add_argument("--service", default="ai1net.v1.GenerateService")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--watch", action="append", default=[], metavar="NAME=PID",
                        help="report this process's CPU share too (repeatable)")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args(argv)
    args.watch = {name: int(pid) for name, pid in (item.split("=") for item in args.watch)}
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(run(args))
    else:
        result = asyncio.run(run(args))
    result.setdefault("client", CLIENTS[args.kind])
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
