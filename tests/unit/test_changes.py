"""The change feed on a real SQLite file: what one store writes, another applies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from ai1net.server import storage
from ai1net.server.changes import ChangeFeed
from ai1net.server.errors import Unauthenticated
from ai1net.server.keys import KeyLimits, KeyStore
from ai1net.server.storage import Database, utcnow


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'changes.db'}")
    await database.migrate()
    yield database
    await database.close()


async def follower(db: Database) -> tuple[ChangeFeed, KeyStore]:
    """Another process's key cache and feed (not polling: the test drives it)."""
    feed = ChangeFeed(db=db, redis_url=None)
    keys = KeyStore(db=db, catch_up=feed.catch_up)
    feed.on("key", keys.reload_one, keys.load)
    await keys.load()
    return feed, keys


async def test_a_key_written_elsewhere_is_applied_by_catching_up(db: Database):
    feed, keys = await follower(db)
    writer = KeyStore(db=db)
    principal, secret = await writer.create(role="consumer", name="elsewhere",
                                            limits=KeyLimits())
    assert keys.lookup(secret) is None
    assert (await keys.authenticate_fresh(secret)).id == principal.id
    await writer.revoke(principal.id)
    await feed.reload_everything()
    assert keys.lookup(secret) is None


async def test_unknown_keys_look_for_changes_once_per_interval(db: Database):
    _feed, keys = await follower(db)
    queries: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:
        if "changes" in statement:
            queries.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    for n in range(20):
        with pytest.raises(Unauthenticated):
            await keys.authenticate_fresh(f"ai1_unknown{n}")
    assert len(queries) == 1, queries


async def test_old_changes_are_pruned(database_url: str):
    database = Database(database_url)
    try:
        await database.migrate()
        writer = KeyStore(db=database)
        await writer.create(role="consumer", name="old", limits=KeyLimits())
        async with database.session() as session:
            last = await storage.last_change(session=session)
            assert last >= 1
            await storage.prune_changes(session=session, before=utcnow() - timedelta(hours=1))
            assert len(await storage.changes_after(session=session, seq=0)) == 1
            await storage.prune_changes(session=session, before=utcnow() + timedelta(hours=1))
            assert await storage.changes_after(session=session, seq=0) == []
        await writer.create(role="consumer", name="new", limits=KeyLimits())
        async with database.session() as session:
            assert await storage.last_change(session=session) == last + 1  # never reused
    finally:
        await database.close()
