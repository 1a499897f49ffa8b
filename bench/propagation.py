"""``python -m bench.propagation``: how long a key revocation on one replica takes to be in
force on another (CONTRACT §2.7), with and without Redis.

Two gateways in this process share one fresh PostgreSQL database (``--postgres-url``,
default ``AI1NET_TEST_POSTGRES_URL``) and, in the Redis pass, the local Redis
(``--redis-url``, default ``AI1NET_TEST_REDIS_URL``); a third pass uses one SQLite file.
For each of ``--changes`` keys, one replica revokes it (at a random moment) and the clock
runs from the commit until the other's key cache no longer holds it (checked every
millisecond). Prints p50,
p95 and the worst delay per pass.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from ai1net.server.app import Gateway, build_gateway
from ai1net.server.keys import KeyLimits
from tests.conftest import PostgresDatabase, gateway_settings


async def revoke_and_time(one: Gateway, two: Gateway, changes: int) -> list[float]:
    secrets_by_id = {}
    for n in range(changes):
        principal, secret = await one.keys.create(role="consumer", name=f"bench-{n}",
                                                  limits=KeyLimits())
        secrets_by_id[principal.id] = secret
    # Watching the other replica's cache as a caller would see it: there is no event.
    while any(two.keys.lookup(s) is None for s in secrets_by_id.values()):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    delays = []
    for key_id, secret in secrets_by_id.items():
        # At a random moment, not in step with the other replica's polls.
        await asyncio.sleep(random.uniform(0, 0.3))
        await one.keys.revoke(key_id)
        started = time.perf_counter()
        while two.keys.lookup(secret) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        delays.append((time.perf_counter() - started) * 1000)
    return delays


async def one_pass(database_url: str, redis_url: str | None, changes: int) -> list[float]:
    settings = gateway_settings(database_url, redis_url=redis_url)
    one = await build_gateway(settings)
    two = await build_gateway(settings)
    try:
        await one.start()
        await two.start()
        return await revoke_and_time(one, two, changes)
    finally:
        await two.stop(grace=0)
        await one.stop(grace=0)


def report(name: str, delays: list[float]) -> None:
    ordered = sorted(delays)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{name:<28} n={len(delays):<4} p50 {statistics.median(delays):7.1f} ms   "
          f"p95 {p95:7.1f} ms   worst {max(delays):7.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--postgres-url", default=os.environ.get("AI1NET_TEST_POSTGRES_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("AI1NET_TEST_REDIS_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'propagation.db'}"
        report("SQLite, no Redis", await one_pass(url, None, args.changes))
    if args.postgres_url:
        os.environ["AI1NET_TEST_POSTGRES_URL"] = args.postgres_url
        async with PostgresDatabase() as url:
            report("PostgreSQL, no Redis", await one_pass(url, None, args.changes))
        if args.redis_url:
            async with PostgresDatabase() as url:
                report("PostgreSQL + Redis", await one_pass(url, args.redis_url, args.changes))


if __name__ == "__main__":
    asyncio.run(main())
