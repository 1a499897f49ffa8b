"""The ledger's write path: one event per call, written behind in batches.

Events wait in a bounded in-memory buffer and are flushed every ``interval`` seconds
or as soon as ``batch_size`` are waiting. A failed write is retried with the same
event ids (the generation ids: inserts that ignore ids already stored), so an event is
never written twice nor lost while the process lives; ``close()`` flushes what is left.

With a spool (``server/spool.py``) each event is also appended to a local file as it is
recorded, before its call's answer leaves, and the file is emptied whenever the buffer has
been written: a process killed with events unwritten leaves them there, and the next
process to start on that spool directory writes them (:meth:`Ledger.start`). When the
database is down long enough for the buffer to fill, new events are counted in ``dropped``
and logged, and stay in the spool (which is then no longer emptied) until the next start:
the buffer bounds memory, not truth.

Each batch's transaction also adds the events it stored to the hourly roll-ups
(``server/rollups.py``) that reports read, and a background task deletes raw events older
than the retention, if one is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from opentelemetry.trace import SpanContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from ai1net.server import rollups
from ai1net.server.spool import Spool, orphans
from ai1net.server.storage import Database
from ai1net.server.telemetry import call_context, usage_flush_span

log = logging.getLogger(__name__)


class UsageEvent(NamedTuple):
    """One call's usage, in the column order of ``usage_events``: a tuple is its row."""

    id: str
    ts_ms: int
    key_id: str
    model: str
    model_owner: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    cost_nanos: int
    latency_ms: int
    ttft_ms: int
    outcome: str  # ok | error | cancelled | timeout
    error_type: str = ""


EVENT_FIELDS = UsageEvent._fields
# Writing an event id twice is a no-op: a retried batch never duplicates events.
SQLITE_INSERT = (f"INSERT OR IGNORE INTO usage_events ({', '.join(EVENT_FIELDS)}) "  # noqa: S608
                 f"VALUES ({', '.join('?' * len(EVENT_FIELDS))})")


# How often a process deletes raw events past the retention (AI1NET_USAGE_RETENTION_DAYS).
PRUNE_EVERY_S = 3600.0

# PostgreSQL: the batch as one array a column (one statement, however many events); the ids
# it stored come back, so that the roll-ups count those only.
_NOT_TEXT = {"ts_ms": "BIGINT", "input_tokens": "BIGINT", "output_tokens": "BIGINT",
             "estimated": "BOOLEAN", "cost_nanos": "BIGINT", "latency_ms": "BIGINT",
             "ttft_ms": "BIGINT"}
PG_INSERT = text(
    f"INSERT INTO usage_events ({', '.join(EVENT_FIELDS)}) "
    + rollups.unnest([(name, _NOT_TEXT.get(name, "VARCHAR")) for name in EVENT_FIELDS])
    + " ON CONFLICT (id) DO NOTHING RETURNING id")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ledger:
    def __init__(self, *, db: Database, interval: float = 0.1, batch_size: int = 500,
                 limit: int = 100_000, enabled: bool = True,
                 spool_dir: Path | None = None, link_calls: bool = False,
                 retention_days: int = 0) -> None:
        # link_calls: a flush's span links to its calls' spans (when spans are exported).
        self._db = db
        self._link_calls = link_calls
        self._retention_days = retention_days
        self._pruner: asyncio.Task[None] | None = None
        self._spool_dir = spool_dir
        self._spool: Spool | None = None
        self._interval = interval
        self._batch_size = batch_size
        self._limit = limit
        self._pending: list[UsageEvent] = []
        # The span of each pending event's call, so a flush's span links to them.
        self._calls: list[SpanContext | None] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0
        self.written = 0
        self.enabled = enabled

    @property
    def depth(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        """Write what dead processes left in the spool directory, then open this one's."""
        if self._spool_dir is not None and self.enabled:
            await self.recover(self._spool_dir)
            self._spool = Spool(self._spool_dir)
        self._task = asyncio.create_task(self._run(), name="ai1net-ledger")
        if self._retention_days and self.enabled:
            self._pruner = asyncio.create_task(self._prune_loop(), name="ai1net-ledger-prune")

    async def recover(self, directory: Path) -> int:
        """Write the events of the spool files no live process holds; how many there were."""
        recovered = 0
        for orphan in orphans(directory):
            try:
                events = [UsageEvent(*row) for row in orphan.rows()
                          if len(row) == len(EVENT_FIELDS)]
                for start in range(0, len(events), self._batch_size):
                    await self._write(events[start:start + self._batch_size])
            except BaseException:
                orphan.release(remove=False)
                raise
            orphan.release(remove=True)
            recovered += len(events)
            if events:
                log.warning("wrote %d usage events left unwritten in %s by a process that "
                            "stopped", len(events), orphan.path)
        return recovered

    def record(self, event: UsageEvent) -> None:
        if not self.enabled:
            return
        if self._spool is not None:
            self._spool.append(event)
        if len(self._pending) >= self._limit:
            self.dropped += 1
            log.error("usage buffer full (%d events): event %s left in the spool only",
                      self._limit, event.id)
            return
        self._pending.append(event)
        self._calls.append(call_context() if self._link_calls else None)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Write everything pending now; raises if the database refuses."""
        async with self._lock:
            while self._pending:
                batch = self._pending[: self._batch_size]
                with usage_flush_span(self._calls[: len(batch)]) as span:
                    span.set_attribute("ai1net.usage.events", len(batch))
                    await self._write(batch)
                del self._pending[: len(batch)]
                del self._calls[: len(batch)]
                self.written += len(batch)
            if self._spool is not None and not self.dropped:
                self._spool.truncate()  # no await since the buffer emptied: all is stored

    async def close(self) -> None:
        """Flush what is left. If the database refuses, the events stay in the spool for
        the next start (without a spool they are lost, and logged as such)."""
        for task in (self._task, self._pruner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._pruner = None
        try:
            await self.flush()
        except Exception:
            kept = "kept in the spool for the next start" if self._spool else "lost"
            log.exception("could not flush %d usage events at shutdown: %s",
                          len(self._pending), kept)
        if self._spool is not None:
            self._spool.close(remove=not self._pending and not self.dropped)
            self._spool = None

    async def _run(self) -> None:
        backoff = self._interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                backoff = self._interval
            except Exception:
                backoff = min(backoff * 2, 5.0)
                log.warning("usage flush failed; %d events kept, retrying in %.1fs",
                            len(self._pending), backoff, exc_info=True)

    async def _write(self, batch: Sequence[UsageEvent]) -> None:
        """Store the batch's events and add those stored now (not the ids already there) to
        the roll-ups, in one transaction."""
        if self._db.is_sqlite:
            await self._write_sqlite(batch)
            return
        if not batch:
            return
        async with self._db.engine.begin() as conn:
            stored = set((await conn.execute(PG_INSERT, rollups.arrays(EVENT_FIELDS, batch)))
                         .scalars())
            await rollups.add(conn, first_of_each(batch, stored))

    async def _write_sqlite(self, batch: Sequence[UsageEvent]) -> None:
        """One executemany (an event is already a row) and the roll-ups' upserts, run in the
        event loop: a few microseconds a row, where a worker thread contending with the
        loop for the GIL and the core took several times that (measured paired: 8% of a
        call's CPU). Only when another writer holds the database does the batch wait, in a
        thread. (With synchronous=NORMAL, SQLite's automatic checkpoint, every ~1,000
        pages of log, is the one commit that syncs to disk.)"""
        try:
            self._store_sqlite(batch, wait=False)
        except OperationalError:  # locked by another writer (or worse: the thread says)
            await asyncio.to_thread(self._store_sqlite, batch, wait=True)
        await asyncio.sleep(0)  # calls run between batches

    def _store_sqlite(self, batch: Sequence[UsageEvent], *, wait: bool) -> None:
        try:
            self._db.write_sync(functools.partial(_store_new, batch), wait=wait)
        except _AlreadyStored:  # rolled back: store again, learning first which ids are new
            self._db.write_sync(functools.partial(_store_some, batch), wait=wait)

    async def prune(self, now: int | None = None) -> int:
        """Delete raw events older than the retention (none when it is 0); how many."""
        if not self._retention_days:
            return 0
        cutoff = rollups.retention_cutoff(now_ms() if now is None else now,
                                          self._retention_days)
        pruned = await rollups.prune_events(self._db.engine, cutoff)
        if pruned:
            log.info("pruned %d usage events older than %d days (the roll-ups keep their "
                     "sums)", pruned, self._retention_days)
        return pruned

    async def _prune_loop(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception:
                log.warning("could not prune old usage events; trying again in an hour",
                            exc_info=True)
            await asyncio.sleep(PRUNE_EVERY_S)


class _AlreadyStored(Exception):
    """Some of the batch's ids were stored before: its roll-up must skip them."""


def _store_new(batch: Sequence[UsageEvent], conn: Connection) -> None:
    """The usual batch, every id new: the insert's row count says so."""
    if conn.exec_driver_sql(SQLITE_INSERT, batch).rowcount != len(batch):
        raise _AlreadyStored
    rollups.add_sync(conn, batch)


def _store_some(batch: Sequence[UsageEvent], conn: Connection) -> None:
    """A batch holding ids stored before (a retry, a replayed spool): only the new ones
    count."""
    ids = [event.id for event in batch]
    held = ", ".join("?" * len(ids))
    stored = {row[0] for row in conn.exec_driver_sql(
        f"SELECT id FROM usage_events WHERE id IN ({held})", tuple(ids))}  # noqa: S608
    fresh = first_of_each(batch, {event.id for event in batch} - stored)
    if fresh:
        conn.exec_driver_sql(SQLITE_INSERT, fresh)
        rollups.add_sync(conn, fresh)


def first_of_each(batch: Sequence[UsageEvent], ids: set[str]) -> list[UsageEvent]:
    """The events whose id is in ``ids``, each id once (the first, as an insert that
    ignores known ids keeps the first)."""
    chosen: dict[str, UsageEvent] = {}
    for event in batch:
        if event.id in ids and event.id not in chosen:
            chosen[event.id] = event
    return list(chosen.values())
