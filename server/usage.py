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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from opentelemetry.trace import SpanContext
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError

from ai1net.server.spool import Spool, orphans
from ai1net.server.storage import Database
from ai1net.server.tables import UsageEventRow
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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ledger:
    def __init__(self, *, db: Database, interval: float = 0.1, batch_size: int = 500,
                 limit: int = 100_000, enabled: bool = True,
                 spool_dir: Path | None = None, link_calls: bool = False) -> None:
        # link_calls: a flush's span links to its calls' spans (when spans are exported).
        self._db = db
        self._link_calls = link_calls
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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
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
        if self._db.is_sqlite:
            await self._write_sqlite(batch)
            return
        table = UsageEventRow.__table__  # type: ignore[attr-defined]  # set by SQLModel, undeclared
        statement = pg_insert(table).on_conflict_do_nothing(index_elements=["id"])
        params = [event._asdict() for event in batch]
        async with self._db.engine.begin() as conn:
            await conn.execute(statement, params)

    async def _write_sqlite(self, batch: Sequence[UsageEvent]) -> None:
        """One executemany (an event is already a row), run in the event loop: a few
        microseconds a row, where a worker thread contending with the loop for the GIL and
        the core took several times that (measured paired: 8% of a call's CPU). Only when
        another writer holds the database does the batch wait, in a thread. (With
        synchronous=NORMAL, SQLite's automatic checkpoint, every ~1,000 pages of log, is the
        one commit that syncs to disk.)"""
        try:
            self._db.write_sync(SQLITE_INSERT, batch, wait=False)
        except OperationalError:  # locked by another writer (or worse: the thread says)
            await asyncio.to_thread(self._db.write_sync, SQLITE_INSERT, batch, wait=True)
        await asyncio.sleep(0)  # calls run between batches
