"""A database outage: the gateway keeps serving, holds usage, and writes it on recovery."""

from __future__ import annotations

import asyncpg
import pytest

from tests.conftest import (
    POSTGRES_URL,
    PostgresDatabase,
    gateway_settings,
    run_harness,
)

pytestmark = pytest.mark.postgres


async def set_connections(admin_url: str, name: str, allowed: bool) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = $1 AND pid <> pg_backend_pid()", name)
    finally:
        await conn.close()


async def test_serving_continues_through_a_database_outage(provider_url: str):
    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    database = PostgresDatabase()
    async with database as url:
        async for harness in run_harness(gateway_settings(url)):
            provider = await harness.key("provider", "outage-provider")
            consumer = await harness.key("consumer", "outage-consumer")
            await harness.register(provider, name="steady", type="text",
                                   endpoint=provider_url + "/ok")
            ledger = harness.gateway.ledger
            await ledger.flush()
            written = ledger.written
            await set_connections(database.admin, database.name, allowed=False)
            try:
                for _ in range(5):
                    status, _, _ = await harness.generate(consumer, model="steady", input="hi")
                    assert status == 200  # no SQL on the way to the provider
                with pytest.raises(Exception):  # noqa: B017, PT011  (whatever the driver raises)
                    await ledger.flush()
                assert ledger.depth == 5  # held, not lost
                async with harness.http.get(f"{harness.http_url}/readyz") as resp:
                    assert resp.status == 503
            finally:
                await set_connections(database.admin, database.name, allowed=True)
            await ledger.flush()
            assert ledger.depth == 0
            assert ledger.written == written + 5
            async with harness.http.get(f"{harness.http_url}/readyz") as resp:
                assert resp.status == 200
