"""``python -m bench.ledger_write``: the ledger's batch write before and after the roll-ups.

After: the background batch writer (``Ledger._write``: the events and their roll-up deltas
in one transaction) on a database at the head schema. Before: the write of the events alone,
as the ledger did it, on a database at schema 0010 (the events' indexes by model, key and
owner, no roll-ups). Interleaved in rounds, fresh event ids each time. Events
are "now", spread over 500 keys and 20 models as ``bench/usage_query.py``'s are (the worst
case for the roll-ups: nearly every event of a batch is its own (key, model) row; ``--keys
20`` concentrates them). The
call's own path is untouched: it only appends to the buffer and the spool
(``bench/spool_cost.py``). Prints the median microseconds per event, wall and CPU (CPU is
this process's: on SQLite the write runs in the event loop; on PostgreSQL the server's
share is not in it).

    python -m bench.ledger_write                        # two fresh SQLite files
    python -m bench.ledger_write --database-url postgresql://postgres@127.0.0.1:5432/bench
        # makes databases bench_before and bench_after there, and drops them at the end
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ai1net.server.storage import Database, async_url
from ai1net.server.tables import UsageEventRow
from ai1net.server.usage import SQLITE_INSERT, Ledger, UsageEvent, now_ms

MODELS = [f"model-{i:02d}" for i in range(20)]
KEYS = [f"key_consumer{i:03d}" for i in range(500)]
_ids = itertools.count()


def batch(rng: random.Random, size: int, keys: int = len(KEYS)) -> list[UsageEvent]:
    now = now_ms()
    events = []
    for _ in range(size):
        model = rng.randrange(len(MODELS))
        tokens_in, tokens_out = rng.randrange(1, 2000), rng.randrange(1, 1000)
        events.append(UsageEvent(
            id=f"gen_{next(_ids):032x}", ts_ms=now - rng.randrange(1000),
            key_id=rng.choice(KEYS[:keys]), model=MODELS[model],
            model_owner=f"key_owner{model % 5}",
            input_tokens=tokens_in, output_tokens=tokens_out, estimated=False,
            cost_nanos=tokens_in * 2000 + tokens_out * 4000, latency_ms=rng.randrange(50, 2000),
            ttft_ms=0, outcome="ok"))
    return events


def events_only(db: Database) -> Callable[[Sequence[UsageEvent]], Awaitable[None]]:
    """The write of the events alone, as the ledger did it before the roll-ups."""
    async def write(events: Sequence[UsageEvent]) -> None:
        if db.is_sqlite:
            db.write_sync(lambda conn: conn.exec_driver_sql(SQLITE_INSERT, events), wait=True)
            return
        table = UsageEventRow.__table__  # type: ignore[attr-defined]
        statement = pg_insert(table).on_conflict_do_nothing(index_elements=["id"])
        async with db.engine.begin() as conn:
            await conn.execute(statement, [event._asdict() for event in events])
    return write


async def timed(write: Callable[[Sequence[UsageEvent]], Awaitable[None]],
                batches: list[list[UsageEvent]]) -> tuple[float, float]:
    """Microseconds per event, wall and CPU."""
    wall, cpu = time.perf_counter(), time.process_time()
    for events in batches:
        await write(events)
    count = sum(len(events) for events in batches)
    return ((time.perf_counter() - wall) / count * 1e6,
            (time.process_time() - cpu) / count * 1e6)


async def at_0010(url: str) -> Database:
    """A database at schema 0010: the last before the roll-ups."""
    from alembic import command
    from alembic.config import Config

    from ai1net.server.storage import MIGRATIONS

    def upgrade(connection: Any) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "0010")

    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(upgrade)
    return db


async def main(before_url: str, after_url: str, rounds: int, sizes: list[int],
               events_per_round: int, keys: int, prefill: int) -> None:
    before = await at_0010(before_url)
    after = Database(after_url)
    await after.migrate()
    ledger = Ledger(db=after)
    old = events_only(before)
    rng = random.Random(1)
    for _ in range(0, prefill, 1000):  # an insert's cost grows with the indexes at first
        await old(batch(rng, 1000, keys))
        await ledger._write(batch(rng, 1000, keys))
    print(f"database: {after.url.split('@')[-1]}; {prefill:,} events before; {rounds} rounds "
          f"of {events_per_round:,} events over {keys} keys")
    print(f"{'batch':>6} {'before µs':>10} {'after µs':>9} {'change':>7}   "
          f"{'cpu: before':>11} {'after':>6} {'change':>7}")
    for size in sizes:
        plain: list[tuple[float, float]] = []
        rolled: list[tuple[float, float]] = []
        for _ in range(rounds):
            count = max(1, events_per_round // size)
            plain.append(await timed(old, [batch(rng, size, keys) for _ in range(count)]))
            rolled.append(await timed(ledger._write,
                                      [batch(rng, size, keys) for _ in range(count)]))
        a, b = (statistics.median(w for w, _ in x) for x in (plain, rolled))
        ca, cb = (statistics.median(c for _, c in x) for x in (plain, rolled))
        print(f"{size:>6} {a:>10.1f} {b:>9.1f} {(b - a) / a:>+7.0%}   {ca:>11.1f} {cb:>6.1f} "
              f"{(cb - ca) / ca:>+7.0%}")
    await before.close()
    await after.close()


async def postgres(url: str, run: Callable[[str, str], Awaitable[None]]) -> None:
    """Run with two new databases beside ``url``'s, dropped afterwards."""
    base = make_url(url)
    admin = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    names = [f"{base.database}_before", f"{base.database}_after"]
    try:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await run(*(base.set(database=name).render_as_string(hide_password=False)
                    for name in names))
    finally:
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await admin.dispose()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=5000, help="events a round")
    parser.add_argument("--keys", type=int, default=len(KEYS),
                        help=f"consumer keys the events spread over (at most {len(KEYS)})")
    parser.add_argument("--prefill", type=int, default=200_000,
                        help="events written before measuring")
    parser.add_argument("--batch", type=int, action="append",
                        help="batch sizes (default 10, 100, 500)")
    args = parser.parse_args()
    sizes = args.batch or [10, 100, 500]
    keys = max(1, min(args.keys, len(KEYS)))

    async def run(before: str, after: str) -> None:
        await main(before, after, args.rounds, sizes, args.events, keys, args.prefill)

    if args.database_url:
        asyncio.run(postgres(args.database_url, run))
        return
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(f"sqlite:///{Path(folder) / 'before.db'}",
                        f"sqlite:///{Path(folder) / 'after.db'}"))


if __name__ == "__main__":
    cli()
