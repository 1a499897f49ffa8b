"""Redis away: limits and budgets fall back to per-process shares, within the stated
bound, and are shared again when it returns. Each test runs a Redis of its own."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from ai1net.server.errors import BudgetExceeded
from ai1net.server.quota import Admission, KeyRateLimited
from ai1net.server.quota.failover import FailoverQuota
from ai1net.server.quota.redis_store import RedisQuota
from tests.conftest import ADMIN_KEY, bearer, two_replicas
from tests.integration.test_quota_redis import Spent, principal
from tests.support.gateway_process import start_gateway
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

CALL = 1_000_000


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    async with RedisServer() as server:
        yield server


def frozen() -> int:
    return 0  # no bucket refills while a test runs: counts are exact


@pytest.fixture
async def two_quotas(redis: RedisServer) -> AsyncIterator[tuple[FailoverQuota, ...]]:
    spent = Spent()
    quotas = tuple(FailoverQuota(RedisQuota.from_url(redis.url, load_spent=spent, timeout_s=1),
                                 load_spent=spent, heartbeat_s=60, probe_s=0.05,
                                 clock=frozen) for _ in range(2))
    for quota in quotas:
        await quota.start()
    await quotas[0].beat()  # it started first, when it was alone
    assert [q.replicas for q in quotas] == [2, 2]
    yield quotas
    for quota in quotas:
        await quota.close()


async def admit_all(quota: FailoverQuota, key, nanos: int = 0) -> list[Admission]:
    """Admit calls until the quota refuses one; what was admitted."""
    admitted = []
    while True:
        try:
            admitted.append(await quota.admit(key, reserve_tokens=0, reserve_nanos=nanos))
        except (BudgetExceeded, KeyRateLimited):
            return admitted


async def test_a_rate_limit_is_divided_among_the_replicas_seen(redis, two_quotas):
    one, two = two_quotas
    key = principal("key_rl", rpm=60)
    await redis.stop()
    counts = [len(await admit_all(quota, key)) for quota in (one, two)]
    assert counts == [30, 30]  # the bound: at most one extra minute's limit cluster-wide
    assert one.degraded and two.degraded
    assert one.status().local_admissions == 30


async def test_a_budget_outage_spends_only_what_remained_and_resyncs(redis, two_quotas):
    one, two = two_quotas
    spent: Spent = one._load_spent  # type: ignore[assignment]  # the shared ledger stand-in
    key = principal("key_b", budget=10 * CALL)
    before = await one.admit(key, reserve_tokens=0, reserve_nanos=CALL)  # through Redis
    await one.settle(before, tokens=0, cost_nanos=CALL)
    spent.value = CALL  # the ledger has it
    held = await two.admit(key, reserve_tokens=0, reserve_nanos=CALL)  # in flight

    await redis.stop(keep_data=True)
    await two.settle(held, tokens=0, cost_nanos=CALL)  # fails: owed to Redis
    spent.value = 2 * CALL
    outage = []
    for quota in (one, two):
        for admission in await admit_all(quota, key, CALL):
            await quota.settle(admission, tokens=0, cost_nanos=CALL)
            outage.append(admission)
    assert len(outage) == 8  # 8 remained: 4 each; the budget holds exactly
    assert all(a.local for a in outage)

    await redis.start()
    async with asyncio.timeout(10):
        await asyncio.gather(one.recovered(), two.recovered())
    assert not one.degraded
    client = Redis.from_url(redis.url)
    assert await client.hget(f"ai1net:{{{key.id}}}:budget", "reserved") == b"0"
    await client.aclose()
    # Redis kept its data: it learnt what it missed (the ledger stand-in still says 2).
    assert await one.spent_nanos(key.id) == 10 * CALL  # 1 before + 1 owed + 8 local
    with pytest.raises(BudgetExceeded):
        await two.admit(key, reserve_tokens=0, reserve_nanos=CALL)


async def degraded(harness) -> bool:
    async with harness.http.get(f"{harness.http_url}/metrics") as resp:
        return "ai1net_quota_degraded 1.0" in await resp.text()


async def eventually(check, within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_replicas_serve_through_a_redis_outage_and_catch_up(redis, provider_url):
    async with two_replicas(redis_url=redis.url) as (one, two):
        limited = await one.key("consumer", "limited", rate_limit={"requests_per_minute": 600},
                                budget_usd=10.0)
        other = await one.key("consumer", "other")
        provider = await one.key("provider")
        await one.register(provider, name="m", type="text", endpoint=provider_url + "/ok")

        async def served_on_two(key: str) -> bool:
            return (await two.generate(key, model="m", input="hi"))[0] == 200

        await eventually(lambda: served_on_two(limited))
        await redis.stop()
        for harness in (one, two):
            for _ in range(5):
                status, _, body = await harness.generate(limited, model="m", input="hi")
                assert status == 200, body
        assert await degraded(one) and await degraded(two)

        await redis.start()  # empty: budgets are rebuilt from the ledger
        await eventually(lambda: _not(degraded(one)))
        await eventually(lambda: _not(degraded(two)))
        async with one.http.get(f"{one.http_url}/v1/keys", headers=bearer(ADMIN_KEY)) as resp:
            key_id = next(k["id"] for k in (await resp.json())["keys"] if k["name"] == "other")
        async with one.http.delete(f"{one.http_url}/v1/keys/{key_id}",
                                   headers=bearer(ADMIN_KEY)) as resp:
            assert resp.status == 204
        await eventually(lambda: _not(served_on_two(other)))  # the feed listens again


async def _not(check) -> bool:
    return not await check


async def test_a_gateway_exits_0_on_sigterm_during_a_redis_outage(redis, tmp_path: Path,
                                                                   provider_url: str):
    import aiohttp

    gateway = await start_gateway(f"sqlite:///{tmp_path / 'g.db'}", tmp_path,
                                  AI1NET_REDIS_URL=redis.url)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.base}/v1/keys", headers=bearer(ADMIN_KEY), json={
                "role": "consumer", "rate_limit": {"requests_per_minute": 60}}) as resp:
            consumer = (await resp.json())["key"]
        async with http.post(f"{gateway.base}/v1/models", headers=bearer(ADMIN_KEY), json={
                "name": "m", "type": "text", "endpoint": provider_url + "/ok"}) as resp:
            assert resp.status == 201
        await redis.stop()
        async with http.post(f"{gateway.base}/v1/generate", headers=bearer(consumer),
                             json={"model": "m", "input": "hi"}) as resp:
            assert resp.status == 200
    gateway.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(gateway.process.wait(), 15) == 0


async def test_a_restarted_redis_counting_one_replica_does_not_grow_a_share(redis):
    """A Redis that restarted empty counts only the replicas that have beaten since: the
    share keeps the most replicas counted over a heartbeat's lifetime."""
    spent = Spent()
    quotas = [FailoverQuota(RedisQuota.from_url(redis.url, load_spent=spent, timeout_s=1),
                            load_spent=spent, heartbeat_s=60, probe_s=0.05, clock=frozen)
              for _ in range(3)]
    try:
        for quota in quotas:
            await quota.start()
        for quota in quotas:
            await quota.beat()
        one = quotas[0]
        assert one.replicas == 3
        await redis.stop()
        await admit_all(one, principal("key_first", rpm=60))  # finds Redis away
        await redis.start()  # empty: `one` is the first and only replica to beat
        async with asyncio.timeout(10):
            await one.recovered()
        await redis.stop()
        local = await admit_all(one, principal("key_share", budget=12 * CALL), CALL)
        assert len(local) == 4  # a third of 12, not all 12
    finally:
        for quota in quotas:
            await quota.close()


async def test_back_on_redis_promptly_under_load_and_every_spend_replayed(redis, two_quotas):
    """Calls go on while the replica replays what Redis missed: it must catch up with them
    (one transaction, spends summed per key) instead of replaying one call a round trip."""
    one, _ = two_quotas
    keys = [principal(f"key_load{n}", budget=10**6 * CALL) for n in range(3)]
    costs = [0, 0, 0]
    stop = asyncio.Event()

    async def load() -> None:
        n = 0
        while not stop.is_set():
            admission = await one.admit(keys[n % 3], reserve_tokens=0, reserve_nanos=CALL)
            await one.settle(admission, tokens=0, cost_nanos=CALL)
            costs[n % 3] += CALL
            n += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(load())

    async def until(condition) -> None:
        while not condition():
            if running.done():
                running.result()  # the load failed: say why
            await asyncio.sleep(0.01)

    await until(lambda: costs[0] >= 20 * CALL)  # through Redis
    await redis.stop(keep_data=True)
    await until(lambda: one.local_admissions >= 3000)
    await redis.start()
    try:
        async with asyncio.timeout(5):
            await one.recovered()
    finally:
        stop.set()
        await running
    assert not one.degraded
    for key, cost in zip(keys, costs, strict=True):
        assert await one.spent_nanos(key.id) == cost  # nothing lost, nothing twice


async def test_a_budget_rebuilt_while_the_database_is_away_starts_from_the_last_spend_seen(
        redis):
    """Redis restarted empty and the ledger does not answer: the budget is rebuilt from the
    spend Redis last reported, instead of every call failing."""

    async def database_away(key_id: str) -> int:
        raise OSError("connection refused")

    spent = Spent()
    quota = RedisQuota.from_url(redis.url, load_spent=spent, timeout_s=1)
    key = principal("key_rebuilt", budget=3 * CALL)
    try:
        for _ in range(2):
            admission = await quota.admit(key, reserve_tokens=0, reserve_nanos=CALL)
            await quota.settle(admission, tokens=0, cost_nanos=CALL)
        await quota.admit(key, reserve_tokens=0, reserve_nanos=0)  # Redis says 2 spent
        await redis.stop()
        await redis.start()
        quota._load_spent = database_away
        admission = await quota.admit(key, reserve_tokens=0, reserve_nanos=CALL)
        await quota.settle(admission, tokens=0, cost_nanos=CALL)
        with pytest.raises(BudgetExceeded):
            await quota.admit(key, reserve_tokens=0, reserve_nanos=CALL)
    finally:
        await quota.close()
