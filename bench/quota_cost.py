"""``python -m bench.quota_cost``: what one admit + settle costs, in process and on Redis.

A key with a rate limit, a token limit and a budget (so every part runs), 1,000 admit +
settle pairs after one warm-up; the median is printed. The Redis figure is one round trip
each way on this machine (``--redis-url``, default ``AI1NET_TEST_REDIS_URL`` or the local
server); it is skipped when Redis does not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from datetime import UTC, datetime

from ai1net.server.errors import Unavailable
from ai1net.server.keys import Principal
from ai1net.server.quota import LocalQuota, Quota
from ai1net.server.quota.redis_store import RedisQuota

CALL_NANOS = 1_000_000  # one call's worst case


async def no_spend(_key_id: str) -> int:
    return 0


async def median_us(quota: Quota, key: Principal, pairs: int) -> float:
    await quota.admit(key, reserve_tokens=0, reserve_nanos=0)
    samples = []
    for _ in range(pairs):
        started = time.perf_counter()
        admission = await quota.admit(key, reserve_tokens=100, reserve_nanos=CALL_NANOS)
        await quota.settle(admission, tokens=50, cost_nanos=CALL_NANOS // 2)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


async def main(redis_url: str, pairs: int) -> None:
    key = Principal(id=f"bench-{secrets.token_hex(4)}", name="bench", role="consumer",
                    key_hash="-", prefix="-", requests_per_minute=10**6,
                    tokens_per_minute=10**8, budget_nanos=10**15, created_at=datetime.now(UTC))
    local = LocalQuota(load_spent=no_spend)
    print(f"LocalQuota admit+settle: median {await median_us(local, key, pairs):.1f} µs")
    redis = RedisQuota.from_url(redis_url, load_spent=no_spend)
    try:
        print(f"RedisQuota admit+settle: median {await median_us(redis, key, pairs):.1f} µs "
              f"({redis_url})")
    except Unavailable as exc:
        print(f"RedisQuota: skipped, {redis_url} does not answer ({exc})")
    finally:
        await redis.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("AI1NET_TEST_REDIS_URL",
                                                              "redis://127.0.0.1:6379/0"))
    parser.add_argument("--pairs", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.redis_url, args.pairs))
