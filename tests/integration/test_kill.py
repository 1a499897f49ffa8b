"""SIGKILL right after answering: every answered call is accounted exactly once, by the
next process to start on the same database and spool."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ADMIN_KEY, POSTGRES_URL, PostgresDatabase, bearer
from tests.support.gateway_process import count_events, query, start_gateway

UNARY, STREAMED = 40, 10


async def answered_calls(base: str, provider_url: str) -> set[str]:
    """Make a key and two models, then UNARY + STREAMED calls; the ids answered."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/keys", headers=bearer(ADMIN_KEY),
                             json={"role": "consumer", "name": "c"}) as resp:
            consumer = (await resp.json())["key"]
        for name, path in (("unary", "/ok"), ("streamed", "/stream/ndjson")):
            async with http.post(f"{base}/v1/models", headers=bearer(ADMIN_KEY), json={
                    "name": name, "type": "text", "endpoint": provider_url + path}) as resp:
                assert resp.status == 201

        async def call(model: str, stream: bool) -> str:
            async with http.post(f"{base}/v1/generate", headers=bearer(consumer), json={
                    "model": model, "input": "hi", "stream": stream}) as resp:
                assert resp.status == 200
                if not stream:
                    return str((await resp.json())["id"])
                last = (await resp.text()).strip().splitlines()[-1]
                return str(json.loads(last)["id"])

        ids = await asyncio.gather(*(call("unary", False) for _ in range(UNARY)),
                                   *(call("streamed", True) for _ in range(STREAMED)))
    return set(ids)


async def run_scenario(database_url: str, tmp_path: Path, provider_url: str) -> None:
    spool = tmp_path / "spool"
    first = await start_gateway(database_url, tmp_path, AI1NET_SPOOL_DIR=str(spool))
    answered = await answered_calls(first.base, provider_url)
    first.process.send_signal(signal.SIGKILL)
    await first.process.wait()
    # The flush interval is 30 s and a batch 500 events: nothing reached the database.
    assert await count_events(database_url) == 0

    assert len(list(spool.glob("*.spool"))) == 1
    second = await start_gateway(database_url, tmp_path, AI1NET_SPOOL_DIR=str(spool))
    stored = await query(database_url, "select id from usage_events")
    assert sorted(str(row[0]) for row in stored) == sorted(answered)
    assert len(answered) == UNARY + STREAMED
    second.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.process.wait(), 15) == 0
    assert await count_events(database_url) == UNARY + STREAMED  # replayed once, not twice
    assert not list(spool.glob("*.spool"))  # a clean stop leaves no spool behind


async def test_answered_calls_survive_sigkill_on_sqlite(tmp_path: Path, provider_url: str):
    await run_scenario(f"sqlite:///{tmp_path / 'g.db'}", tmp_path, provider_url)


@pytest.mark.postgres
async def test_answered_calls_survive_sigkill_on_postgres(tmp_path: Path, provider_url: str):
    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    async with PostgresDatabase() as url:
        await run_scenario(url, tmp_path, provider_url)
