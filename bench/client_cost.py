"""``python -m bench.client_cost``: CPU per provider call, aiohttp's client against the
gateway's connection pool (server/http1.py).

The mock provider runs on one core; two client processes, one per client, run at once on the
other (a paired measurement: the machine's drift hits both alike). Each makes ``--calls``
calls at concurrency 32, as the gateway makes them (a JSON body, a ``traceparent``, a
first-byte timeout, the answer read whole), and reports the CPU time it spent per call.

    python -m bench.client_cost [--calls 40000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from bench.passes import MOCK_CORE, SUT_CORE
from bench.procs import free_port, spawn, wait_tcp

CONCURRENCY = 32
BODY = orjson.dumps({"input": "hello", "parameters": {}})
HEADERS = {"Content-Type": "application/json",
           "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


async def with_aiohttp(url: str, calls: int) -> float:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=256),
                                    timeout=aiohttp.ClientTimeout(total=None),
                                    skip_auto_headers=("User-Agent",))

    async def call() -> bytes:
        async with asyncio.timeout(30):
            response = await session.post(url, data=BODY, headers=HEADERS)
        try:
            return await response.read()
        finally:
            response.release()

    try:
        return await cpu_per_call(call, calls)
    finally:
        await session.close()


async def with_pool(url: str, calls: int) -> float:
    from ai1net.server.http1 import ConnectionPool

    pool = ConnectionPool(guard=False)

    async def call() -> bytes:
        async with asyncio.timeout(30):
            exchange = await pool.open(url, HEADERS, BODY)
        try:
            return await exchange.response.read()
        finally:
            pool.release(exchange.connection)

    try:
        return await cpu_per_call(call, calls)
    finally:
        await pool.close()


async def cpu_per_call(call: Callable[[], Awaitable[bytes]], calls: int) -> float:
    """µs of this process's CPU per call, after a warm-up."""
    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(worker(50) for _ in range(CONCURRENCY)))
    started = time.process_time()
    await asyncio.gather(*(worker(calls // CONCURRENCY) for _ in range(CONCURRENCY)))
    return (time.process_time() - started) / (calls // CONCURRENCY * CONCURRENCY) * 1e6


def client_main(kind: str, url: str, calls: int) -> None:
    import uvloop

    measure = with_aiohttp if kind == "aiohttp" else with_pool
    print(f"{uvloop.run(measure(url, calls)):.1f}")


def main(calls: int, rounds: int) -> None:
    log_dir = Path(tempfile.mkdtemp(prefix="ai1net-client-cost-"))
    port = free_port()
    mock = spawn("mock", [sys.executable, "-m", "bench.mock_provider", "--port", str(port)],
                 core=MOCK_CORE, log_dir=log_dir)
    try:
        wait_tcp(mock, port)
        url = f"http://127.0.0.1:{port}/v1/generate"
        for round_ in range(1, rounds + 1):
            clients = {kind: spawn(kind, [sys.executable, "-m", "bench.client_cost", "--client",
                                          kind, "--url", url, "--calls", str(calls)],
                                   core=SUT_CORE, log_dir=log_dir / str(round_))
                       for kind in ("aiohttp", "pool")}
            costs = {}
            for kind, client in clients.items():
                if client.process.wait() != 0:
                    raise RuntimeError(client.log_path.read_text()[-2000:])
                costs[kind] = float(client.log_path.read_text().split()[-1])
            print(f"round {round_}: aiohttp {costs['aiohttp']:.1f} µs of CPU a call, "
                  f"pool {costs['pool']:.1f} µs ({costs['aiohttp'] / costs['pool']:.2f}x)")
    finally:
        mock.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=("aiohttp", "pool"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.url, args.calls)
    else:
        main(args.calls, args.rounds)
