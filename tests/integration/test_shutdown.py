"""SIGTERM: calls in flight finish, accounted usage is flushed, the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from ai1net.server.storage import async_url
from tests.conftest import ADMIN_KEY, bearer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_gateway(database_url: str, tmp_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    http, grpc_port = free_port(), free_port()
    env = {**os.environ, "AI1NET_ADMIN_KEY": ADMIN_KEY, "AI1NET_SECRET_KEY": "shutdown-test",
           "AI1NET_ALLOW_PRIVATE_ENDPOINTS": "1", "AI1NET_DATABASE_URL": database_url,
           "AI1NET_USAGE_FLUSH_INTERVAL_S": "30"}  # only the shutdown flush writes
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai1net.server.cli", "serve", "--http-addr", f"127.0.0.1:{http}",
        "--grpc-addr", f"127.0.0.1:{grpc_port}", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{http}"
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"{base}/readyz") as resp:
                    if resp.status == 200:
                        return process, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    process.kill()
    raise RuntimeError("gateway did not become ready")


async def count_events(database_url: str) -> int:
    engine = create_async_engine(async_url(database_url))
    async with engine.connect() as conn:
        value = (await conn.execute(text("select count(*) from usage_events"))).scalar_one()
    await engine.dispose()
    return int(value)


async def provider_requests(http: aiohttp.ClientSession, provider_url: str) -> int:
    async with http.get(f"{provider_url}/_events", params={"path": "/slow/400"}) as resp:
        return sum(1 for e in (await resp.json())["events"] if e["kind"] == "request")


async def run_scenario(database_url: str, tmp_path: Path, provider_url: str) -> None:
    process, base = await start_gateway(database_url, tmp_path)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(f"{base}/v1/keys", headers=bearer(ADMIN_KEY),
                             json={"role": "consumer", "name": "c"}) as resp:
            consumer = (await resp.json())["key"]
        async with http.post(f"{base}/v1/models", headers=bearer(ADMIN_KEY), json={
                "name": "slow", "type": "text", "endpoint": provider_url + "/slow/400"}) as resp:
            assert resp.status == 201

        async def call() -> int:
            async with http.post(f"{base}/v1/generate", headers=bearer(consumer),
                                 json={"model": "slow", "input": "hi"}) as resp:
                return resp.status

        before = await provider_requests(http, provider_url)
        calls = [asyncio.create_task(call()) for _ in range(200)]
        async with asyncio.timeout(10):  # every call is in flight at the provider
            while await provider_requests(http, provider_url) < before + 200:
                await asyncio.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        statuses = await asyncio.gather(*calls)
    assert await asyncio.wait_for(process.wait(), 15) == 0
    assert statuses.count(200) == 200
    assert await count_events(database_url) == 200


async def test_sigterm_drains_and_flushes_on_sqlite(tmp_path: Path, provider_url: str):
    await run_scenario(f"sqlite:///{tmp_path / 'g.db'}", tmp_path, provider_url)


@pytest.mark.postgres
async def test_sigterm_drains_and_flushes_on_postgres(tmp_path: Path, provider_url: str):
    from tests.conftest import POSTGRES_URL, postgres_database

    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    async with postgres_database() as url:
        await run_scenario(url, tmp_path, provider_url)
