"""RedisQuota against a real Redis: one limit and one budget shared by two replicas."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from ai1net.server.errors import BudgetExceeded, Unavailable
from ai1net.server.keys import Principal
from ai1net.server.quota import Admission, KeyRateLimited, build_quota
from ai1net.server.quota.failover import FailoverQuota
from ai1net.server.quota.redis_store import RedisQuota, settlement
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis

CALL = 1_000_000


class Spent:
    def __init__(self, value: int = 0) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self, key_id: str) -> int:
        self.calls += 1
        return self.value


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        pytest.skip("AI1NET_TEST_REDIS_URL is not set")
    return REDIS_URL


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key-id prefix of this test's own; its Redis keys are deleted afterwards."""
    prefix = f"test{secrets.token_hex(6)}"
    yield prefix
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"ai1net:{{{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def spent() -> Spent:
    return Spent()


@pytest.fixture
async def replicas(redis_url: str, spent: Spent) -> AsyncIterator[Callable[[], RedisQuota]]:
    """Make RedisQuota instances, each with its own connection pool, as replicas have."""
    made: list[RedisQuota] = []

    def make(**options: float) -> RedisQuota:
        made.append(RedisQuota.from_url(redis_url, load_spent=spent, **options))
        return made[-1]

    yield make
    for quota in made:
        await quota.close()


def principal(key_id: str, *, rpm: int = 0, tpm: int = 0,
              budget: int | None = None) -> Principal:
    return Principal(id=key_id, name=key_id, role="consumer", key_hash="h", prefix="p",
                     requests_per_minute=rpm, tokens_per_minute=tpm, budget_nanos=budget,
                     created_at=datetime.now(UTC))


async def admit(quota: RedisQuota, key: Principal, tokens: int = 0, nanos: int = 0) -> Admission:
    return await quota.admit(key, reserve_tokens=tokens, reserve_nanos=nanos)


async def test_the_request_after_the_limit_is_refused(replicas, prefix):
    quota = replicas()
    key = principal(f"{prefix}-a", rpm=5)
    remaining = [(await admit(quota, key)).limits.requests.remaining for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key)
    assert 1 <= refused.value.retry_after_s <= 12
    assert refused.value.metadata()["x-ratelimit-remaining-requests"] == "0"
    assert refused.value.metadata()["x-ratelimit-limit-requests"] == "5"
    other = await admit(quota, principal(f"{prefix}-b", rpm=5))
    assert other.headers()["x-ratelimit-remaining-requests"] == "4"


async def test_tokens_limit_and_settling(replicas, prefix):
    quota = replicas()
    key = principal(f"{prefix}-a", tpm=100)
    first = await admit(quota, key, tokens=60)
    with pytest.raises(KeyRateLimited) as refused:
        await admit(quota, key, tokens=60)
    assert 11 <= refused.value.retry_after_s <= 12
    await quota.settle(first, tokens=10, cost_nanos=0)
    assert (await admit(quota, key, tokens=60)).limits.tokens.remaining in (30, 31)


async def test_two_replicas_share_one_rate_limit(replicas, prefix):
    one, two = replicas(), replicas()
    key = principal(f"{prefix}-a", rpm=10)
    results = await asyncio.gather(*(admit((one, two)[n % 2], key) for n in range(30)),
                                   return_exceptions=True)
    assert sum(isinstance(r, Admission) for r in results) == 10
    assert sum(isinstance(r, KeyRateLimited) for r in results) == 20


async def test_two_replicas_share_one_budget(replicas, prefix, spent):
    one, two = replicas(), replicas()
    spent.value = 0
    key = principal(f"{prefix}-a", budget=10 * CALL)
    results = await asyncio.gather(
        *(admit((one, two)[n % 2], key, nanos=CALL) for n in range(60)),
        return_exceptions=True)
    admitted = [r for r in results if isinstance(r, Admission)]
    assert len(admitted) == 10  # at most 10; reservations are exact, so exactly
    assert len(admitted) + sum(isinstance(r, BudgetExceeded) for r in results) == 60
    await asyncio.gather(*((one, two)[n % 2].settle(a, tokens=0, cost_nanos=CALL)
                           for n, a in enumerate(admitted)))
    total = await one.spent_nanos(key.id)
    assert total == await two.spent_nanos(key.id) == len(admitted) * CALL
    assert total <= 10 * CALL + CALL
    with pytest.raises(BudgetExceeded):
        await admit(two, key, nanos=CALL)


async def test_a_settlement_replayed_adds_nothing_twice(replicas, prefix, spent):
    """A settlement whose reply was lost is owed and replayed after the outage: if Redis had
    applied it after all, its hold is gone and the replay adds no second spend."""
    one = replicas()
    spent.value = 0
    key = principal(f"{prefix}-once", budget=10 * CALL)
    admission = await admit(one, key, nanos=CALL)
    args = settlement(admission, tokens=0, cost_nanos=CALL)
    assert args is not None
    await one.apply_settlement(key.id, args)  # applied; the caller never heard back
    await one.replay([(key.id, args)])  # so it is replayed once Redis answers again
    assert await one.spent_nanos(key.id) == CALL
    unheld: list[int | str] = [0, 0, CALL, "1", ""]  # a cost Redis never held: counted
    await one.replay([(key.id, unheld)])
    assert await one.spent_nanos(key.id) == 2 * CALL


async def test_spent_is_loaded_from_the_database_once(replicas, prefix, spent):
    spent.value = 9 * CALL
    one, two = replicas(), replicas()
    key = principal(f"{prefix}-a", budget=10 * CALL)
    admission = await admit(one, key, nanos=CALL)
    with pytest.raises(BudgetExceeded):
        await admit(two, key, nanos=CALL)
    assert spent.calls == 1
    await one.settle(admission, tokens=0, cost_nanos=0)  # the call failed: released
    await admit(two, key, nanos=CALL)
    await one.forget(key.id)
    spent.value = 0
    await admit(two, key, nanos=10 * CALL)  # rebuilt from the database


async def test_a_cancelled_call_releases_its_reservation(replicas, prefix):
    quota = replicas()
    key = principal(f"{prefix}-a", budget=CALL)
    started = asyncio.Event()

    async def call() -> None:
        admission = await admit(quota, key, nanos=CALL)
        try:
            started.set()
            await asyncio.Event().wait()
        finally:
            await quota.settle(admission, tokens=0, cost_nanos=0)

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await admit(quota, key, nanos=CALL)


async def test_a_dead_replicas_hold_lapses(replicas, prefix):
    dead, alive = replicas(hold_ttl_s=0.05), replicas()
    key = principal(f"{prefix}-a", budget=CALL)
    await admit(dead, key, nanos=CALL)  # never settled
    with pytest.raises(BudgetExceeded):
        await admit(alive, key, nanos=CALL)
    await asyncio.sleep(0.1)
    await admit(alive, key, nanos=CALL)


async def test_rate_state_expires_and_budget_does_not(replicas, prefix, redis_url):
    quota = replicas()
    key = principal(f"{prefix}-a", rpm=60, tpm=600, budget=CALL)
    await quota.settle(await admit(quota, key, tokens=100, nanos=CALL), tokens=300,
                       cost_nanos=CALL)
    client = Redis.from_url(redis_url)
    try:
        rate_ttl = await client.pttl(f"ai1net:{{{key.id}}}:rate")
        budget_ttl = await client.pttl(f"ai1net:{{{key.id}}}:budget")
    finally:
        await client.aclose()
    assert 30_000 < rate_ttl <= 32_000  # 300 of 600 tokens to refill: 30 s
    assert budget_ttl == -1


async def test_an_unreachable_redis_is_unavailable(spent):
    quota = RedisQuota.from_url("redis://127.0.0.1:1/0", load_spent=spent)
    try:
        with pytest.raises(Unavailable):
            await admit(quota, principal("key_a", rpm=1))
    finally:
        await quota.close()


async def test_build_quota_with_redis(redis_url, spent):
    quota = build_quota(redis_url, load_spent=spent)
    assert isinstance(quota, FailoverQuota)
    await quota.close()
