"""How long usage aggregations take over a million events (measured, not asserted).

    python -m bench.usage_query                      # a fresh SQLite file in a temp dir
    python -m bench.usage_query --events 200000
    python -m bench.usage_query --database-url postgresql://postgres@127.0.0.1:5432/bench
    python -m bench.usage_query --keys 20          # calls concentrated on fewer keys

A fresh SQLite file is made when no URL is given; a database that already holds events is
queried as it is (to compare query changes without refilling). Events are spread over the
last 30 days, 20 models of 5 owners, and 500 keys (``--keys``: fewer, busier keys); 2%
fail. They are written through the ledger's own batch write, roll-ups included (a database
filled before migration 0011 gets its roll-ups from the migration). Each query runs
``--repeat`` times through the same function GetUsage calls; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from ai1net.server.keys import Principal
from ai1net.server.reports import Period, UsageReport, usage_totals
from ai1net.server.storage import Database
from ai1net.server.usage import Ledger, UsageEvent

DAY_MS = 86_400_000
MODELS = [f"model-{i:02d}" for i in range(20)]
OWNERS = [f"key_owner{i}" for i in range(5)]
KEYS = [f"key_consumer{i:03d}" for i in range(500)]  # --keys takes the first N
CHUNK = 20_000


def principal(role: str, key_id: str) -> Principal:
    return Principal(id=key_id, name=key_id, role=role, key_hash="-", prefix="-",
                     requests_per_minute=0, tokens_per_minute=0, budget_nanos=None,
                     created_at=datetime.now(UTC))


def event_rows(count: int, *, start_ms: int, seed: int = 7,
               keys: int = len(KEYS), days: int = 30) -> list[dict[str, object]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        model = rng.randrange(len(MODELS))
        ok = rng.random() >= 0.02
        tokens_in, tokens_out = (rng.randrange(1, 2000), rng.randrange(1, 1000)) if ok else (0, 0)
        rows.append({
            "id": f"gen_{i:024x}", "ts_ms": start_ms + rng.randrange(days * DAY_MS),
            "key_id": rng.choice(KEYS[:keys]), "model": MODELS[model],
            "model_owner": OWNERS[model % len(OWNERS)], "input_tokens": tokens_in,
            "output_tokens": tokens_out, "estimated": False,
            "cost_nanos": (tokens_in * 2_000_000 + tokens_out * 4_000_000 + 999) // 1000,
            "latency_ms": rng.randrange(50, 2000), "ttft_ms": 0,
            "outcome": "ok" if ok else "error", "error_type": "" if ok else "UPSTREAM_ERROR"})
    return rows


async def fill(db: Database, count: int, start_ms: int, keys: int, days: int = 30) -> float:
    """Events written as the ledger writes them (with their roll-ups), in large batches."""
    ledger = Ledger(db=db)
    began = time.perf_counter()
    for offset in range(0, count, CHUNK):
        rows = event_rows(min(CHUNK, count - offset), start_ms=start_ms, seed=offset,
                          keys=keys, days=days)
        for row_number, row in enumerate(rows, start=offset):
            row["id"] = f"gen_{row_number:024x}"
        await ledger._write([UsageEvent(**row) for row in rows])  # type: ignore[arg-type]
    return time.perf_counter() - began


async def timed(repeat: int, query: Callable[[], Awaitable[UsageReport]]
                ) -> tuple[float, float, UsageReport]:
    """Median wall and CPU seconds. CPU time (this process, the SQLite thread included)
    says more than wall time on a busy machine; on PostgreSQL the work is in the server."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = await query()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


async def main(url: str, events: int, repeat: int, keys: int) -> None:
    db = Database(url)
    await db.migrate()
    print(f"database: {db.url.split('@')[-1]}")
    async with db.engine.connect() as conn:
        held = (await conn.execute(text("SELECT count(*), min(ts_ms) FROM usage_events"))).one()
    if held[0]:
        start_ms = held[1] // DAY_MS * DAY_MS
        print(f"querying the {held[0]:,} events already there")
    else:
        start_ms = (int(time.time() * 1000) // DAY_MS - 30) * DAY_MS
        print(f"inserted {events:,} events in {await fill(db, events, start_ms, keys):.1f} s")
    async with db.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))  # as autovacuum would, in time
    admin = principal("admin", "key_admin")
    last_day = Period(start_ms + 29 * DAY_MS, start_ms + 30 * DAY_MS)
    cases = [
        ("admin, total", admin, Period(), "", ""),
        ("admin, group_by=model", admin, Period(), "", "model"),
        ("admin, group_by=day", admin, Period(), "", "day"),
        ("admin, group_by=hour", admin, Period(), "", "hour"),
        ("admin, group_by=key", admin, Period(), "", "key"),
        ("admin, last day, group_by=model", admin, last_day, "", "model"),
        ("admin, model=model-03, group_by=day", admin, Period(), "model-03", "day"),
        ("provider (4 models), group_by=model", principal("provider", OWNERS[0]), Period(),
         "", "model"),
        ("consumer (1 key), group_by=day", principal("consumer", KEYS[0]), Period(), "",
         "day"),
    ]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'query':<40} {'wall ms':>9} {'cpu ms':>8} {'groups':>7} {'requests':>10}")
    for name, caller, period, model, group_by in cases:
        async def query(caller: Principal = caller, period: Period = period,
                        model: str = model, group_by: str = group_by) -> UsageReport:
            async with db.session() as session:
                return await usage_totals(session=session, caller=caller, period=period,
                                          model=model, group_by=group_by)
        wall, cpu, report = await timed(repeat, query)
        print(f"{name:<40} {wall * 1000:>9.1f} {cpu * 1000:>8.1f} {len(report.groups):>7} "
              f"{report.totals.requests:>10,}")
    await db.close()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keys", type=int, default=len(KEYS),
                        help=f"consumer keys the events spread over (at most {len(KEYS)})")
    args = parser.parse_args()
    keys = max(1, min(args.keys, len(KEYS)))
    if args.database_url:
        asyncio.run(main(args.database_url, args.events, args.repeat, keys))
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'usage-bench.db'}"
        asyncio.run(main(url, args.events, args.repeat, keys))


if __name__ == "__main__":
    cli()
