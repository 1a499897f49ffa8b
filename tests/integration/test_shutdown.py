"""SIGTERM: calls in flight finish, accounted usage is flushed, the process exits 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import ADMIN_KEY, bearer
from tests.support.gateway_process import count_events, start_gateway


async def provider_requests(http: aiohttp.ClientSession, provider_url: str) -> int:
    async with http.get(f"{provider_url}/_events", params={"path": "/slow/400"}) as resp:
        return sum(1 for e in (await resp.json())["events"] if e["kind"] == "request")


async def run_scenario(database_url: str, tmp_path: Path, provider_url: str) -> None:
    gateway = await start_gateway(database_url, tmp_path)
    process, base = gateway.process, gateway.base
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
    from tests.conftest import POSTGRES_URL, PostgresDatabase

    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    async with PostgresDatabase() as url:
        await run_scenario(url, tmp_path, provider_url)


async def test_sigterm_turns_unready_at_once_and_serves_through_the_drain_delay(
        tmp_path: Path, provider_url: str):
    from grpc import aio
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from ai1net.v1 import generate_pb2, generate_pb2_grpc

    gateway = await start_gateway(f"sqlite:///{tmp_path / 'g.db'}", tmp_path,
                                  AI1NET_DRAIN_DELAY_S="600")
    base = gateway.base
    async with aiohttp.ClientSession() as http, http.post(
            f"{base}/v1/models", headers=bearer(ADMIN_KEY),
            json={"name": "m", "type": "text", "endpoint": provider_url + "/ok"}) as resp:
        assert resp.status == 201
    gateway.process.send_signal(signal.SIGTERM)
    async with aiohttp.ClientSession() as http:  # not ready at once...
        async with asyncio.timeout(10):
            while True:
                async with http.get(f"{base}/readyz") as resp:
                    body = await resp.json()
                if resp.status == 503 and body["error"]["message"] == "shutting down":
                    break
                await asyncio.sleep(0.01)
    async with aio.insecure_channel(gateway.grpc_target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
        answer = await generate_pb2_grpc.GenerateServiceStub(channel).Generate(  # ...but serving
            generate_pb2.GenerateRequest(model="m", input="hi"),
            metadata=(("x-api-key", ADMIN_KEY),), timeout=5)
        assert answer.id.startswith("gen_")
    async with aiohttp.ClientSession() as http, http.post(  # a new connection, in the delay
            f"{base}/v1/generate", headers=bearer(ADMIN_KEY),
            json={"model": "m", "input": "hi"}) as resp:
        assert resp.status == 200
    gateway.process.send_signal(signal.SIGTERM)  # a second signal cuts the delay short
    assert await asyncio.wait_for(gateway.process.wait(), 15) == 0
    assert await count_events(f"sqlite:///{tmp_path / 'g.db'}") == 2
