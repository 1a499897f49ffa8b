"""Replicas starting together on one empty database: all come up, one admin key, one schema."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from ai1net.server.keys import KeyStore
from ai1net.server.storage import Database
from tests.conftest import ADMIN_KEY, POSTGRES_URL, PostgresDatabase
from tests.support.gateway_process import query, start_gateway, wait_ready_or_exit


async def test_the_admin_key_is_stored_once_by_stores_racing(database_url: str):
    db = Database(database_url)
    await db.migrate()
    try:
        stores = [KeyStore(db=db) for _ in range(2)]
        principals = await asyncio.gather(*(
            store.ensure(ADMIN_KEY, role="admin", name="AI1NET_ADMIN_KEY")
            for store in stores for _ in range(5)))
        assert len({p.id for p in principals}) == 1
        assert [p.role for p in await stores[0].list()] == ["admin"]
        assert stores[1].authenticate(ADMIN_KEY).id == principals[0].id
    finally:
        await db.close()


async def test_a_revoked_admin_key_stays_revoked(sqlite_url: str):
    db = Database(sqlite_url)
    await db.migrate()
    try:
        store = KeyStore(db=db)
        admin = await store.ensure(ADMIN_KEY, role="admin", name="AI1NET_ADMIN_KEY")
        await store.revoke(admin.id)
        again = await KeyStore(db=db).ensure(ADMIN_KEY, role="admin", name="AI1NET_ADMIN_KEY")
        assert again.revoked
        assert again.id == admin.id
    finally:
        await db.close()


@pytest.mark.postgres
async def test_three_replicas_started_together_on_an_empty_database(tmp_path: Path):
    if not POSTGRES_URL:
        pytest.skip("AI1NET_TEST_POSTGRES_URL is not set")
    async with PostgresDatabase() as url:
        replicas = await asyncio.gather(*(
            start_gateway(url, tmp_path, wait_ready=False) for _ in range(3)))
        try:
            await asyncio.gather(*(wait_ready_or_exit(replica) for replica in replicas))
        finally:
            for replica in replicas:
                if replica.process.returncode is None:
                    replica.process.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(r.process.wait(), 15) for r in replicas]
        assert codes == [0, 0, 0]
        assert await query(url, "select role from api_keys") == [("admin",)]
        assert len(await query(url, "select version_num from alembic_version")) == 1
