"""Changes in force everywhere within a second (CONTRACT §2.7): made by the CLI straight to
the database, by another replica with or without Redis, and across a lost Redis connection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio

from tests.conftest import (
    ADMIN_KEY,
    REDIS_URL,
    Harness,
    bearer,
    gateway_settings,
    run_harness,
    two_replicas,
)
from tests.integration.test_cli import cli

SECRET_ENV = {"AI1NET_SECRET_KEY": "test-secret-passphrase"}


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 1.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.01)


def status_with(harness: Harness, key: str, path: str = "/v1/models",
                ) -> Callable[[], Awaitable[int]]:
    async def status() -> int:
        async with harness.http.get(harness.http_url + path, headers=bearer(key)) as resp:
            return resp.status
    return status


async def key_id(harness: Harness, name: str) -> str:
    async with harness.http.get(f"{harness.http_url}/v1/keys", headers=bearer(ADMIN_KEY)) as resp:
        return next(k["id"] for k in (await resp.json())["keys"] if k["name"] == name)


async def test_a_key_revoked_by_the_cli_is_refused_within_a_second(database_url: str):
    async for harness in run_harness(gateway_settings(database_url)):
        consumer = await harness.key("consumer")
        status = status_with(harness, consumer)
        assert await status() == 200
        code, out = await cli("keys", "--database-url", database_url, "revoke",
                              await key_id(harness, "consumer"), env=SECRET_ENV)
        assert code == 0, out
        # Only the revoked key calls: nothing else may make the gateway look again.
        await eventually(lambda status=status: _is(status(), 401))


async def test_a_change_on_one_replica_reaches_the_other_without_redis():
    async with two_replicas(redis=False) as (one, two):
        consumer = await one.key("consumer")
        await eventually(lambda: _is(status_with(two, consumer)(), 200))
        provider = await one.key("provider")
        await one.register(provider, name="no-redis", type="text",
                           endpoint="http://127.0.0.1:9/x")
        await eventually(lambda: _is(status_with(two, consumer, "/v1/models/no-redis")(), 200))
        async with one.http.delete(f"{one.http_url}/v1/keys/{await key_id(one, 'consumer')}",
                                   headers=bearer(ADMIN_KEY)) as resp:
            assert resp.status == 204
        await eventually(lambda: _is(status_with(two, consumer)(), 401))


@pytest.mark.redis
async def test_a_change_made_while_the_redis_connection_is_down_arrives_on_reconnecting():
    # The database poll is slowed to a minute: only Redis (and the reload on reconnecting)
    # can bring the change in time.
    async with two_replicas(change_poll_interval_s=60.0) as (one, two):
        consumer = await one.key("consumer")
        await eventually(lambda: _is(status_with(two, consumer)(), 200))
        assert REDIS_URL
        admin = redis.asyncio.from_url(REDIS_URL)
        feed = two.gateway.feed
        reloads = 0
        real_reload = feed.reload_everything

        async def counted_reload() -> None:
            nonlocal reloads
            reloads += 1
            await real_reload()

        feed.reload_everything = counted_reload  # type: ignore[method-assign]
        consumer_id = await key_id(one, "consumer")
        try:
            killed = await kill_clients(admin, feed.name)
            assert killed, "the replica had no Redis connection to kill"
            async with one.http.delete(f"{one.http_url}/v1/keys/{consumer_id}",
                                       headers=bearer(ADMIN_KEY)) as resp:
                assert resp.status == 204
            await eventually(lambda: _is(status_with(two, consumer)(), 401))
            # Whether the ring came before or after it reconnected, it reloaded everything
            # on reconnecting (a ring sent while it was away would be lost).
            await eventually(lambda: _true(reloads >= 1))
            assert await clients_named(admin, feed.name), "did not reconnect"
        finally:
            await admin.aclose()


async def clients_named(admin: redis.asyncio.Redis, name: str) -> list[str]:
    return [str(c["id"]) for c in await admin.client_list() if c.get("name") == name]


async def kill_clients(admin: redis.asyncio.Redis, name: str) -> int:
    """CLIENT KILL the connections of one process (the shared Redis server stays up)."""
    ids = await clients_named(admin, name)
    for client_id in ids:
        await admin.execute_command("CLIENT", "KILL", "ID", client_id)
    return len(ids)


async def _true(value: bool) -> bool:
    return value


async def _is(awaitable: Awaitable[int], expected: int) -> bool:
    return await awaitable == expected

