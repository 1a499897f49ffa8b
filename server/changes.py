"""Cache coherence: what anyone changes, every process applies within a second (§2.7).

Each key or model change is recorded, in the transaction that makes it, as a row of the
``changes`` table (``storage.record_change``), whoever writes it: this process, another
worker or replica, or the CLI writing straight to the database. Every process:

- polls that table every ``poll_interval_s`` (one indexed query) and reloads the rows
  named past the last one it saw — on SQLite and on PostgreSQL, with or without Redis;
- with Redis, also listens on a channel where writers ring after committing, and polls at
  once when it rings (milliseconds instead of a poll interval); the listener reconnects
  with backoff after any error, and reloads everything when it does;
- reloads everything every ``reconcile_interval_s`` as a backstop, and after the database
  failed to answer a poll (it may have restarted: reload rather than trust the cursor).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from ai1net.server import storage
from ai1net.server.storage import Database, utcnow

log = logging.getLogger(__name__)

CHANNEL = "ai1net:changes"
POLL_INTERVAL_S = 0.25
RECONCILE_INTERVAL_S = 30.0
# An unknown API key may make this process look for new changes at most this often.
CATCH_UP_INTERVAL_S = 0.25
# Change rows older than this are deleted (a process further behind reloads everything).
KEEP_CHANGES = timedelta(hours=1)
MAX_BACKOFF_S = 5.0

ReloadOne = Callable[[str], Awaitable[None]]
ReloadAll = Callable[[], Awaitable[None]]


class ChangeFeed:
    def __init__(self, *, db: Database, redis_url: str | None,
                 poll_interval_s: float = POLL_INTERVAL_S,
                 reconcile_interval_s: float = RECONCILE_INTERVAL_S) -> None:
        self._db = db
        # Names this process's Redis connections (CLIENT LIST shows it).
        self.name = f"ai1net-feed-{secrets.token_hex(6)}"
        self._redis: Any = _connect(redis_url, self.name) if redis_url else None
        self._poll_interval_s = poll_interval_s
        self._reconcile_interval_s = reconcile_interval_s
        self._reload_one: dict[str, ReloadOne] = {}
        self._reload_all: list[ReloadAll] = []
        self._seen = 0  # the last change applied here
        self._applying = asyncio.Lock()
        self._wake = asyncio.Event()
        self._reset_wanted = False
        self._caught_up_at = -CATCH_UP_INTERVAL_S
        self._tasks: list[asyncio.Task[None]] = []

    def on(self, kind: str, reload_one: ReloadOne, reload_all: ReloadAll) -> None:
        """How to reload one item of ``kind`` by id, and all of them."""
        self._reload_one[kind] = reload_one
        self._reload_all.append(reload_all)

    async def note_position(self) -> None:
        """Remember where the change sequence stands; call it before loading the caches, so
        that a change made while they load is applied after."""
        self._seen = await self._last_seq()

    async def start(self) -> None:
        """Start following the changes past the noted position."""
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="ai1net-change-poll"))
        if self._redis is not None:
            self._tasks.append(asyncio.create_task(self._listen_loop(),
                                                   name="ai1net-change-listen"))

    async def publish(self, kind: str, item_id: str) -> None:
        """Ring the other processes after a change committed (the change row is the truth:
        a lost ring costs at most a poll interval)."""
        if self._redis is None:
            return
        try:
            await self._redis.publish(CHANNEL, kind)
        except Exception:
            log.warning("could not announce a %s change on Redis; other processes will "
                        "see it at their next poll", kind, exc_info=True)

    async def catch_up(self) -> None:
        """Apply the changes not applied yet, at most once per CATCH_UP_INTERVAL_S whoever
        asks (an unknown key: one the CLI has just made may be among them)."""
        if time.monotonic() - self._caught_up_at < CATCH_UP_INTERVAL_S:
            return
        self._caught_up_at = time.monotonic()
        await self._apply_new()

    async def reload_everything(self) -> None:
        async with self._applying:
            seq = await self._last_seq()  # read first: a change after it is applied later
            for reload_all in self._reload_all:
                await reload_all()
            self._seen = max(self._seen, seq)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()

    # -- following the change table ------------------------------------------------------

    async def _poll_loop(self) -> None:
        failures = 0
        reconcile_at = time.monotonic() + self._reconcile_interval_s
        while True:
            await self._wait(self._poll_interval_s if not failures
                             else min(MAX_BACKOFF_S, self._poll_interval_s * 2 ** failures))
            try:
                if failures or self._reset_wanted or time.monotonic() >= reconcile_at:
                    self._reset_wanted = False
                    await self.reload_everything()
                    await self._prune()
                    reconcile_at = time.monotonic() + self._reconcile_interval_s
                else:
                    await self._apply_new()
            except Exception:
                if not failures:
                    log.warning("could not read changes from the database; retrying",
                                exc_info=True)
                failures += 1
            else:
                if failures:
                    log.info("reading changes from the database again")
                failures = 0

    async def _wait(self, seconds: float) -> None:
        """Until a ring, or ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _apply_new(self) -> None:
        async with self._applying:
            async with self._db.session() as session:
                rows = await storage.changes_after(session=session, seq=self._seen)
            for kind, item_id in dict.fromkeys((row.kind, row.item_id) for row in rows):
                reload_one = self._reload_one.get(kind)
                if reload_one is not None:
                    await reload_one(item_id)
            if rows and rows[-1].seq is not None:
                self._seen = rows[-1].seq

    async def _last_seq(self) -> int:
        async with self._db.session() as session:
            return await storage.last_change(session=session)

    async def _prune(self) -> None:
        async with self._db.session() as session:
            await storage.prune_changes(session=session, before=utcnow() - KEEP_CHANGES)

    # -- the Redis doorbell --------------------------------------------------------------

    async def _listen_loop(self) -> None:
        failures = 0
        subscribed = False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
                    elif message.get("type") == "subscribe":
                        # redis-py also reconnects and subscribes again on its own: either
                        # way, what was rung meanwhile is lost, so reload everything.
                        if subscribed:
                            log.info("listening on Redis for changes again")
                            self._reset_wanted = True
                            self._wake.set()
                        subscribed = True
                        failures = 0
            except Exception:
                if not failures:
                    log.warning("lost the Redis change channel; reconnecting", exc_info=True)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            failures += 1
            await asyncio.sleep(min(MAX_BACKOFF_S, 0.05 * 2 ** failures))


def _connect(url: str, name: str) -> Any:
    import redis.asyncio  # only replicas need it: a fifth of a second of start-up

    return redis.asyncio.from_url(url, client_name=name)
