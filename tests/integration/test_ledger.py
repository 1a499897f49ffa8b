"""The ledger's write path on a real database: batches, retries without duplicates."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import text

from ai1net.server.storage import Database, sqlite_path
from ai1net.server.usage import Ledger, UsageEvent, now_ms


def event(n: int) -> UsageEvent:
    return UsageEvent(id=f"gen_{n:024x}", ts_ms=now_ms(), key_id="key_a", model="m",
                      model_owner="key_p", input_tokens=3, output_tokens=5, estimated=n % 2 == 0,
                      cost_nanos=1_000 + n, latency_ms=2, ttft_ms=1, outcome="ok")


async def rows(db: Database) -> list[tuple]:
    async with db.engine.connect() as conn:
        result = await conn.execute(text(
            "select id, estimated, cost_nanos from usage_events order by id"))
        return [tuple(r) for r in result.all()]


async def test_a_batch_written_twice_is_stored_once(database_url: str):
    db = Database(database_url)
    await db.migrate()
    ledger = Ledger(db=db, batch_size=7)
    try:
        batch = [event(n) for n in range(20)]
        for item in batch:
            ledger.record(item)
        await ledger.flush()
        for item in batch[:10]:  # as a retry after an unclear failure would
            ledger.record(item)
        await ledger.flush()
        stored = await rows(db)
        assert len(stored) == 20
        assert stored[0][1] in (True, 1)
        assert sum(r[2] for r in stored) == sum(1_000 + n for n in range(20))
        assert ledger.depth == 0
    finally:
        await ledger.close()
        await db.close()


async def test_the_buffer_is_bounded(sqlite_url: str, caplog: pytest.LogCaptureFixture):
    db = Database(sqlite_url)
    ledger = Ledger(db=db, limit=5)
    for n in range(8):
        ledger.record(event(n))
    assert ledger.depth == 5
    assert ledger.dropped == 3
    assert "usage buffer full" in caplog.text
    await db.close()


async def test_sqlite_batches_wait_in_a_thread_while_another_writer_holds_the_file(
        sqlite_url: str):
    """Batches are written from the event loop without waiting for locks: when another
    writer holds the database, the batch waits in a thread and the loop keeps serving."""
    db = Database(sqlite_url)
    await db.migrate()
    ledger = Ledger(db=db)
    holder = sqlite3.connect(str(sqlite_path(sqlite_url)), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a registry update would hold it
    try:
        for n in range(30):
            ledger.record(event(n))
        flush = asyncio.create_task(ledger.flush())
        ticks = 0
        while ticks < 5:  # the loop is free while the batch waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not flush.done()
        holder.execute("ROLLBACK")
        await flush
        assert len(await rows(db)) == 30
        assert ledger.depth == 0
    finally:
        holder.close()
        await ledger.close()
        await db.close()
