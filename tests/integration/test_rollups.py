"""The ledger's hourly roll-ups equal the raw events' sums, on SQLite and PostgreSQL:
after random batches with retried ids, after a spool replay of events already stored,
after a write that fails between the events and their roll-up, after the migration's
backfill, and after retention has pruned the raw events."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from ai1net.server import rollups
from ai1net.server.keys import Principal
from ai1net.server.quota import spent_by_key
from ai1net.server.reports import (
    BUCKET_MS,
    Counts,
    Period,
    Totals,
    format_time,
    reconcile,
    usage_totals,
)
from ai1net.server.spool import Spool
from ai1net.server.statement import monthly_statement
from ai1net.server.storage import Database
from ai1net.server.tables import ModelRow
from ai1net.server.usage import Ledger, UsageEvent
from tests.conftest import ADMIN_KEY, Harness, bearer, gateway_settings, run_harness

HOUR = rollups.HOUR_MS
# A Monday, far from now: hours and days of the test are fixed.
T0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)
KEYS = ["key_a", "key_b", "key_c"]
MODELS = {"m1": "key_p", "m2": "key_p", "m3": "key_q"}
OUTCOMES = ["ok", "ok", "ok", "error", "timeout", "cancelled"]


def principal(role: str, key_id: str) -> Principal:
    return Principal(id=key_id, name=key_id, role=role, key_hash="-", prefix="-",
                     requests_per_minute=0, tokens_per_minute=0, budget_nanos=None,
                     created_at=datetime.now(UTC))


ADMIN = principal("admin", "key_admin")


def random_events(rng: random.Random, count: int, *, start: int = 0, hours: int = 72,
                  t0: int = T0) -> list[UsageEvent]:
    events = []
    for n in range(start, start + count):
        model = rng.choice(sorted(MODELS))
        outcome = rng.choice(OUTCOMES)
        events.append(UsageEvent(
            id=f"gen_{n:024x}", ts_ms=t0 + rng.randrange(hours * HOUR), key_id=rng.choice(KEYS),
            model=model, model_owner=MODELS[model], input_tokens=rng.randrange(0, 5000),
            output_tokens=rng.randrange(0, 3000), estimated=rng.random() < 0.1,
            cost_nanos=rng.randrange(0, 10**12), latency_ms=rng.randrange(1, 999),
            ttft_ms=0, outcome=outcome, error_type="" if outcome == "ok" else "X"))
    return events


async def query(db: Database, sql: str) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as conn:
        return [tuple(int(v) if not isinstance(v, str) else v for v in row)
                for row in (await conn.execute(text(sql))).all()]


async def assert_rollups_equal_raw(db: Database) -> None:
    """Both roll-up tables, row for row, against the raw events summed in SQL."""
    sums = ("count(*), sum(CASE WHEN outcome <> 'ok' THEN 1 ELSE 0 END), sum(input_tokens), "
            "sum(output_tokens), sum(cost_nanos)")
    raw_keyed = await query(db, f"SELECT ts_ms / {HOUR} * {HOUR} AS h, key_id, model, "
                                f"model_owner, {sums} FROM usage_events "
                                "GROUP BY h, key_id, model, model_owner ORDER BY 1, 2, 3, 4")
    keyed = await query(db, "SELECT * FROM usage_hourly ORDER BY 1, 2, 3, 4")
    assert keyed == raw_keyed
    raw_models = await query(db, f"SELECT ts_ms / {HOUR} * {HOUR} AS h, model, model_owner, "
                                 f"{sums} FROM usage_events GROUP BY h, model, model_owner "
                                 "ORDER BY 1, 2, 3")
    assert await query(db, "SELECT * FROM usage_hourly_models ORDER BY 1, 2, 3") == raw_models
    day = rollups.DAY_MS
    raw_days = await query(db, f"SELECT ts_ms / {day} * {day} AS d, key_id, model_owner, "
                               f"{sums} FROM usage_events GROUP BY d, key_id, model_owner "
                               "ORDER BY 1, 2, 3")
    assert await query(db, "SELECT * FROM usage_daily_keys ORDER BY 1, 2, 3") == raw_days


def expected(events: list[UsageEvent], period: Period, *, key: str | None = None,
             owner: str | None = None, model: str = "", group_by: str = "",
             ) -> tuple[Totals, dict[str, Totals]]:
    """The report computed in Python from the events themselves."""
    total, groups = Totals(), {}
    for e in events:
        if (period.start_ms is not None and e.ts_ms < period.start_ms) or \
                (period.end_ms is not None and e.ts_ms >= period.end_ms):
            continue
        if (key and e.key_id != key) or (owner and e.model_owner != owner) or \
                (model and e.model != model):
            continue
        one = Totals(1, int(e.outcome != "ok"), e.input_tokens, e.output_tokens, e.cost_nanos)
        total += one
        if group_by:
            label = {"model": e.model, "key": e.key_id}.get(group_by)
            if label is None:
                width = BUCKET_MS[group_by]
                moment = datetime.fromtimestamp(e.ts_ms // width * width / 1000, UTC)
                label = moment.isoformat().replace("+00:00", "Z")
            groups[label] = groups.get(label, Totals()) + one
    return total, groups


def random_period(rng: random.Random) -> Period:
    def moment() -> int | None:
        if rng.random() < 0.15:
            return None
        aligned = T0 + rng.randrange(-2, 74) * HOUR
        return aligned if rng.random() < 0.4 else aligned + rng.randrange(1, HOUR)

    start, end = moment(), moment()
    if start is not None and end is not None and start >= end:
        start, end = end, start + 1 if start == end else start
    return Period(start, end)


async def add_models(db: Database) -> None:
    """The models' records, which reconciliation looks up."""
    now = datetime.now(UTC)
    async with db.session() as session:
        for name, owner in MODELS.items():
            session.add(ModelRow(id=f"mod_{name}", name=name, owner=owner, type="llm",
                                 endpoint="https://example.com/", auth_type="none",
                                 created_at=now, updated_at=now))
        await session.commit()


async def assert_reports_match(db: Database, events: list[UsageEvent], rng: random.Random,
                               periods: int = 12) -> None:
    await add_models(db)
    callers = [(ADMIN, {}), (principal("provider", "key_p"), {"owner": "key_p"}),
               (principal("consumer", "key_b"), {"key": "key_b"})]
    for _ in range(periods):
        period = random_period(rng)
        for caller, scope in callers:
            for group_by in ("", "model", "key", "hour", "day"):
                model = rng.choice(["", "", "m1", "m3"])
                if caller.role == "provider" and model == "m3":
                    model = ""
                async with db.session() as session:
                    report = await usage_totals(session=session, caller=caller, period=period,
                                                model=model, group_by=group_by)
                total, groups = expected(events, period, model=model, group_by=group_by,
                                         **scope)
                assert report.totals == total, (period, caller.role, model, group_by)
                assert dict(report.groups) == groups, (period, caller.role, model, group_by)
        async with db.session() as session:
            counted = await reconcile(session=session, caller=ADMIN, model="m1", period=period)
        total, _ = expected(events, period, model="m1")
        assert counted.gateway == Counts(total.requests, total.tokens_processed)


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_batches_with_retried_ids(database_url: str, seed: int):
    rng = random.Random(seed)
    db = Database(database_url)
    await db.migrate()
    ledger = Ledger(db=db, batch_size=rng.randrange(5, 60))
    try:
        written: list[UsageEvent] = []
        for round_ in range(6):
            fresh = random_events(rng, rng.randrange(1, 120), start=round_ * 1000)
            # Some events again (a retried batch), some twice in one batch.
            again = rng.sample(written, min(len(written), rng.randrange(0, 20)))
            batch = fresh + again + fresh[: rng.randrange(0, 3)]
            rng.shuffle(batch)
            for item in batch:
                ledger.record(item)
            await ledger.flush()
            written += fresh
        assert (await query(db, "SELECT count(*) FROM usage_events"))[0][0] == len(written)
        await assert_rollups_equal_raw(db)
        await assert_reports_match(db, written, rng)
        for key in KEYS:
            assert await spent_by_key(db, key) == sum(e.cost_nanos for e in written
                                                      if e.key_id == key)
    finally:
        await ledger.close()
        await db.close()


async def test_a_spool_replay_adds_only_what_was_not_stored(database_url: str, tmp_path: Path):
    rng = random.Random(3)
    db = Database(database_url)
    await db.migrate()
    ledger = Ledger(db=db, batch_size=25)
    try:
        events = random_events(rng, 120)
        for item in events[:80]:
            ledger.record(item)
        await ledger.flush()
        # A process that wrote its first 80 events and died before emptying its spool,
        # which also held 40 more: all 120 are replayed.
        spool = Spool(tmp_path)
        for item in events:
            spool.append(item)
        spool.close(remove=False)
        assert await ledger.recover(tmp_path) == 120
        assert (await query(db, "SELECT count(*) FROM usage_events"))[0][0] == 120
        await assert_rollups_equal_raw(db)
        await assert_reports_match(db, events, rng, periods=4)
        assert await ledger.recover(tmp_path) == 0  # the orphan was removed once written
    finally:
        await ledger.close()
        await db.close()


async def test_a_write_that_fails_after_the_events_stores_neither(
        database_url: str, monkeypatch: pytest.MonkeyPatch):
    """A batch whose roll-up upsert fails (as a crash after the raw insert would) leaves
    nothing: the events stay pending, and the retry stores both, once."""
    rng = random.Random(4)
    db = Database(database_url)
    await db.migrate()
    ledger = Ledger(db=db, batch_size=30)
    try:
        first = random_events(rng, 50)
        for item in first:
            ledger.record(item)
        await ledger.flush()
        failing = {"left": 1}
        real_sync, real_async = rollups.add_sync, rollups.add

        def broken_sync(conn: Any, events: Any) -> None:
            if failing["left"]:
                failing["left"] -= 1
                raise RuntimeError("killed between the events and their roll-up")
            real_sync(conn, events)

        async def broken(conn: Any, events: Any) -> None:
            if failing["left"]:
                failing["left"] -= 1
                raise RuntimeError("killed between the events and their roll-up")
            await real_async(conn, events)

        monkeypatch.setattr(rollups, "add_sync", broken_sync)
        monkeypatch.setattr(rollups, "add", broken)
        second = random_events(rng, 20, start=1000)
        for item in second:
            ledger.record(item)
        with pytest.raises(RuntimeError, match="killed"):
            await ledger.flush()
        assert ledger.depth == 20
        assert (await query(db, "SELECT count(*) FROM usage_events"))[0][0] == 50
        await assert_rollups_equal_raw(db)
        await ledger.flush()  # the retry
        assert (await query(db, "SELECT count(*) FROM usage_events"))[0][0] == 70
        await assert_rollups_equal_raw(db)
        await assert_reports_match(db, first + second, rng, periods=4)
    finally:
        await ledger.close()
        await db.close()


async def test_retention_prunes_raw_events_and_reports_keep_their_sums(database_url: str):
    rng = random.Random(5)
    db = Database(database_url)
    await db.migrate()
    now = T0 + 60 * 86_400_000
    old = random_events(rng, 150, hours=48)  # 60 days before now
    recent = random_events(rng, 100, start=1000, hours=24, t0=now - 24 * HOUR)
    ledger = Ledger(db=db, batch_size=40, retention_days=30)
    try:
        for item in old + recent:
            ledger.record(item)
        await ledger.flush()
        periods = [Period(), Period(T0, T0 + 48 * HOUR), Period(T0 + 3 * HOUR, now),
                   Period(T0 - 86_400_000, T0 + 86_400_000)]
        before = []
        for period in periods:
            for group_by in ("", "model", "key", "day"):
                async with db.session() as session:
                    before.append(await usage_totals(session=session, caller=ADMIN,
                                                     period=period, group_by=group_by))
        async with db.session() as session:
            statement = await monthly_statement(session=session, caller=ADMIN,
                                                month="2026-03")
        spent = {key: await spent_by_key(db, key) for key in KEYS}

        assert await ledger.prune(now=now) == 150
        assert (await query(db, "SELECT count(*) FROM usage_events"))[0][0] == 100
        assert await ledger.prune(now=now) == 0
        after = []
        for period in periods:
            for group_by in ("", "model", "key", "day"):
                async with db.session() as session:
                    after.append(await usage_totals(session=session, caller=ADMIN,
                                                    period=period, group_by=group_by))
        assert after == before
        assert before[0].totals.requests == 250
        async with db.session() as session:
            assert await monthly_statement(session=session, caller=ADMIN,
                                           month="2026-03") == statement
        assert {key: await spent_by_key(db, key) for key in KEYS} == spent
    finally:
        await ledger.close()
        await db.close()


async def test_retention_zero_keeps_every_event(sqlite_url: str):
    db = Database(sqlite_url)
    await db.migrate()
    ledger = Ledger(db=db)
    try:
        for item in random_events(random.Random(6), 10):
            ledger.record(item)
        await ledger.flush()
        assert await ledger.prune(now=T0 + 10**12) == 0
        assert (await query(db, "SELECT count(*) FROM usage_events"))[0][0] == 10
    finally:
        await ledger.close()
        await db.close()


async def test_the_migration_backfills_the_events_already_stored(database_url: str):
    """A database at 0010 holding events, upgraded: the roll-ups hold their sums."""
    from alembic import command
    from alembic.config import Config

    from ai1net.server.storage import MIGRATIONS

    def upgrade(connection: Any, target: str) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, target)

    db = Database(database_url)
    events = random_events(random.Random(7), 300)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade, "0010")
        columns = ", ".join(UsageEvent._fields)
        values = ", ".join(f":{name}" for name in UsageEvent._fields)
        async with db.engine.begin() as conn:
            await conn.execute(text(f"INSERT INTO usage_events ({columns}) VALUES ({values})"),
                               [e._asdict() for e in events])
        await db.migrate()
        await assert_rollups_equal_raw(db)
        await assert_reports_match(db, events, random.Random(8), periods=3)
    finally:
        await db.close()


async def test_a_gateway_prunes_past_its_retention_and_answers_as_before(sqlite_url: str):
    """AI1NET_USAGE_RETENTION_DAYS on a real gateway: the events older than it go at
    start-up, and /v1/usage over their hours answers what it answered before."""
    db = Database(sqlite_url)
    await db.migrate()
    now = int(datetime.now(UTC).timestamp() * 1000)
    long_ago = now - now % HOUR - 40 * 86_400_000
    old = random_events(random.Random(9), 80, hours=10, t0=long_ago)
    recent = random_events(random.Random(10), 20, start=1000, hours=1, t0=now - HOUR)
    ledger = Ledger(db=db)
    for item in old + recent:
        ledger.record(item)
    await ledger.close()
    await db.close()
    hours = {"from": format_time(long_ago), "to": format_time(long_ago + 10 * HOUR)}

    async def usage(harness: Harness, **query: str) -> Any:
        async with harness.http.get(f"{harness.http_url}/v1/usage", params=query,
                                    headers=bearer(ADMIN_KEY)) as response:
            assert response.status == 200
            return await response.json()

    async for harness in run_harness(gateway_settings(sqlite_url)):
        before = [await usage(harness, **hours, group_by=g) for g in ("model", "key", "day")]
    assert before[0]["usage"]["requests"] == 80
    async for harness in run_harness(gateway_settings(sqlite_url, usage_retention_days=30)):
        check = Database(sqlite_url)
        try:
            async with asyncio.timeout(10):
                while (await query(check, "SELECT count(*) FROM usage_events"))[0][0] != 20:
                    await asyncio.sleep(0.02)
        finally:
            await check.close()
        after = [await usage(harness, **hours, group_by=g) for g in ("model", "key", "day")]
        assert after == before
