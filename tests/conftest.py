"""Shared fixtures: a real scripted provider process, and real gateways on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from grpc import aio

from ai1net.server.app import Gateway, build_gateway, local_target
from ai1net.server.runner import start_bridge
from ai1net.server.settings import Settings
from ai1net.server.telemetry import TraceMode
from tests.support.document import checked_session

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "ai1_test-admin-" + "a" * 32
POSTGRES_URL = os.environ.get("AI1NET_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("AI1NET_TEST_REDIS_URL")
# Every random choice a gateway under test makes (load spreading) follows this seed, so a
# run repeats exactly; set AI1NET_TEST_SEED to try another.
SEED = int(os.environ.get("AI1NET_TEST_SEED", "20261206"))


def start_process(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python args`` in the repo and return it with its first output line."""
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        process.kill()
        raise RuntimeError(f"{args} did not start")
    return process, line


def stop_process(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(5)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(scope="session")
def provider_url() -> Iterator[str]:
    """Base URL of a scripted provider process (tests/support/provider.py)."""
    process, line = start_process("-m", "tests.support.provider", "--port", "0")
    yield f"http://127.0.0.1:{line.split()[1]}"
    stop_process(process)


@pytest.fixture(scope="session")
def demo_provider_url() -> Iterator[str]:
    process, line = start_process("-m", "ai1net.demo.provider", "--port", "0")
    yield line.rsplit(" ", 1)[1]
    stop_process(process)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gateway.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    async with PostgresDatabase() as url:
        yield url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gateway.db'}"


class PostgresDatabase:
    """CREATE DATABASE a fresh one on the test server; DROP it afterwards."""

    def __init__(self) -> None:
        assert POSTGRES_URL
        self.name = f"ai1net_{secrets.token_hex(6)}"
        self.admin = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")

    async def __aenter__(self) -> str:
        conn = await asyncpg.connect(self.admin)
        await conn.execute(f'CREATE DATABASE "{self.name}"')
        await conn.close()
        return self.admin.rsplit("/", 1)[0] + "/" + self.name

    async def __aexit__(self, *exc: object) -> None:
        conn = await asyncpg.connect(self.admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        await conn.close()


@dataclass
class Harness:
    """A running gateway (gRPC + bridge) and clients to talk to it."""

    gateway: Gateway
    http_url: str
    grpc_target: str
    http: aiohttp.ClientSession
    channel: aio.Channel
    keys: dict[str, str] = field(default_factory=dict)

    async def key(self, role: str, name: str | None = None, **body: Any) -> str:
        """A new key of ``role`` made through the API (cached per name)."""
        name = name or role
        if name not in self.keys:
            async with self.http.post(f"{self.http_url}/v1/keys", json={
                    "role": role, "name": name, **body}, headers=bearer(ADMIN_KEY)) as resp:
                assert resp.status == 201, await resp.text()
                self.keys[name] = (await resp.json())["key"]
        return self.keys[name]

    async def register(self, key: str, **spec: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.http_url}/v1/models", json=spec,
                                  headers=bearer(key)) as resp:
            assert resp.status == 201, await resp.text()
            return dict(await resp.json())

    async def generate(self, key: str, **body: Any) -> tuple[int, dict[str, Any], Any]:
        async with self.http.post(f"{self.http_url}/v1/generate", json=body,
                                  headers=bearer(key)) as resp:
            return resp.status, dict(resp.headers), await resp.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def gateway_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "grpc_addr": "127.0.0.1:0", "http_addr": "127.0.0.1:0",
        "database_url": database_url, "admin_key": ADMIN_KEY,
        "secret_key": "test-secret-passphrase", "allow_private_endpoints": True,
        "grace_period_s": 2.0,
        # Its own spool directory: PostgreSQL gateways would otherwise spool in the cwd.
        "spool_dir": tempfile.mkdtemp(prefix="ai1net-spool-"), **overrides}
    return Settings(**values)


async def run_harness(settings: Settings, *, over_grpc: bool = False,
                      tracing: TraceMode = TraceMode.OFF) -> AsyncIterator[Harness]:
    """A gateway and its bridge: in process (as ``ai1net serve`` runs them), or with the
    bridge as a separate gRPC client (as ``--bridge-only`` runs it)."""
    gateway = await build_gateway(settings, rng=random.Random(SEED), tracing=tracing)
    await gateway.start()
    target = local_target(settings.grpc_addr, gateway.port)
    runner, http_port = await start_bridge(settings, target, gateway,
                                           in_process=not over_grpc)
    channel = aio.insecure_channel(target)
    async with checked_session() as http:  # every answer checked against /openapi.json
        try:
            yield Harness(gateway=gateway, http_url=f"http://127.0.0.1:{http_port}",
                          grpc_target=target, http=http, channel=channel)
        finally:
            await channel.close()
            await runner.cleanup()
            await gateway.stop(grace=1)


@pytest.fixture(params=["in-process", "over-grpc"])
async def harness(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Harness]:
    """A gateway on SQLite, its bridge in process and then over gRPC."""
    over_grpc = request.param == "over-grpc"
    async for running in run_harness(gateway_settings(sqlite_url), over_grpc=over_grpc):
        yield running


@pytest.fixture
async def any_harness(database_url: str) -> AsyncIterator[Harness]:
    """A gateway on SQLite, then on PostgreSQL."""
    async for running in run_harness(gateway_settings(database_url)):
        yield running


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a cheap condition until it holds (for effects in another process)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def two_replicas(*, redis: bool = True,
                       **overrides: Any) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two gateways on one fresh PostgreSQL database and (unless not ``redis``) the test
    Redis, or the one ``redis_url`` in ``overrides`` names."""
    if not POSTGRES_URL or (redis and not REDIS_URL):
        pytest.skip("AI1NET_TEST_POSTGRES_URL and AI1NET_TEST_REDIS_URL are needed")
    async with PostgresDatabase() as url:
        settings = gateway_settings(url, **{"redis_url": REDIS_URL if redis else None,
                                            **overrides})
        first, second = run_harness(settings), run_harness(settings)
        one = await anext(first)
        two = await anext(second)
        try:
            yield one, two
        finally:
            for running in (second, first):
                with contextlib.suppress(StopAsyncIteration):
                    await anext(running)
