"""Two replicas on one PostgreSQL and one Redis: a change on one is seen on the other."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ADMIN_KEY, bearer, two_replicas

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def eventually(check, within: float = 1.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.02)


async def test_changes_on_one_replica_reach_the_other(provider_url: str):
    async with two_replicas() as (one, two):
        consumer = await one.key("consumer")
        provider = await one.key("provider")

        async def status_on_two(path: str, key: str) -> int:
            async with two.http.get(f"{two.http_url}{path}", headers=bearer(key)) as resp:
                return resp.status

        await eventually(lambda: _is(status_on_two("/v1/models", consumer), 200))
        await one.register(provider, name="shared", type="text", endpoint=provider_url + "/ok")
        await eventually(lambda: _is(status_on_two("/v1/models/shared", consumer), 200))
        status, _, body = await two.generate(consumer, model="shared", input="hi")
        assert status == 200, body

        async with one.http.get(f"{one.http_url}/v1/keys", headers=bearer(ADMIN_KEY)) as resp:
            keys = (await resp.json())["keys"]
        key_id = next(k["id"] for k in keys if k["name"] == "consumer")
        async with one.http.delete(f"{one.http_url}/v1/keys/{key_id}",
                                   headers=bearer(ADMIN_KEY)) as resp:
            assert resp.status == 204
        await eventually(lambda: _is(status_on_two("/v1/models", consumer), 401))


async def _is(awaitable, expected: int) -> bool:
    return await awaitable == expected
