"""The ledger's roll-ups: what reports read instead of millions of raw events.

Three tables sum the events: ``usage_hourly`` by hour, key and model (consumers' views, a
key's spend), ``usage_hourly_models`` by hour and model alone (admins' and providers'
views: a marketplace has many more keys than models) and ``usage_daily_keys`` by day and
key alone (reports by key). The ledger writes a batch's deltas to the three in the
transaction that writes the batch's events, counting only the events that transaction
stored (an id already stored — a retried batch, a replayed spool — adds nothing), so the
roll-ups equal the raw sums at every commit, whatever stops the process between two
batches. There is no database trigger: one upsert per distinct row a batch touches,
summed in Python first, costs a fraction of a trigger's row-by-row update.

A report over ``[from, to)`` reads the coarsest roll-up that holds what it filters and
groups by — for whole days, then whole hours — and raw events only for the partial hours
at its edges (:func:`source`), so its answer is the raw sum to the event. Raw events older
than ``AI1NET_USAGE_RETENTION_DAYS`` may be deleted (:func:`prune_events`); the roll-ups
stay, and so do reports over whole hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    Subquery,
    Table,
    TextClause,
    case,
    delete,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ai1net.server.tables import (
    UsageDayKeyRow,
    UsageEventRow,
    UsageHourModelRow,
    UsageHourRow,
)


class Event(Protocol):
    """What the roll-ups read of a usage event (``usage.UsageEvent``)."""

    @property
    def ts_ms(self) -> int: ...
    @property
    def key_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def model_owner(self) -> str: ...
    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cost_nanos(self) -> int: ...
    @property
    def outcome(self) -> str: ...


class Period(Protocol):
    """``[start_ms, end_ms)``, None unbounded (``reports.Period``)."""

    @property
    def start_ms(self) -> int | None: ...
    @property
    def end_ms(self) -> int | None: ...

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cost_nanos")

EVENTS = UsageEventRow.__table__.c  # type: ignore[attr-defined]
KEYED = UsageHourRow.__table__  # type: ignore[attr-defined]
BY_MODEL = UsageHourModelRow.__table__  # type: ignore[attr-defined]
BY_DAY_KEY = UsageDayKeyRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Level:
    """One roll-up table: its time column and width, and the columns it keeps."""

    table: Table
    time: str
    width: int
    dims: tuple[str, ...]

    @property
    def key(self) -> tuple[str, ...]:
        return (self.time, *self.dims)


HOURLY = Level(KEYED, "hour_ms", HOUR_MS, ("key_id", "model", "model_owner"))
HOURLY_MODELS = Level(BY_MODEL, "hour_ms", HOUR_MS, ("model", "model_owner"))
DAILY_KEYS = Level(BY_DAY_KEY, "day_ms", DAY_MS, ("key_id", "model_owner"))
LEVELS = (HOURLY, HOURLY_MODELS, DAILY_KEYS)


# -- the write side -------------------------------------------------------------------------

Row = tuple[Any, ...]


def deltas(events: Iterable[Event]) -> list[list[Row]]:
    """A batch summed per row of each level of ``LEVELS``: rows of ``level.key + SUMS``,
    sorted (concurrent writers on PostgreSQL then lock the rows they share in the same
    order, and never deadlock)."""
    hourly: dict[tuple[int, str, str, str], list[int]] = {}
    for event in events:
        dims = (event.ts_ms - event.ts_ms % HOUR_MS, event.key_id, event.model,
                event.model_owner)
        sums = hourly.get(dims)
        if sums is None:
            hourly[dims] = sums = [0, 0, 0, 0, 0]
        sums[0] += 1
        sums[1] += event.outcome != "ok"
        sums[2] += event.input_tokens
        sums[3] += event.output_tokens
        sums[4] += event.cost_nanos
    models: dict[tuple[Any, ...], list[int]] = {}
    days: dict[tuple[Any, ...], list[int]] = {}
    for (hour, key, model, owner), sums in hourly.items():
        _add(models, (hour, model, owner), sums)
        _add(days, (hour - hour % DAY_MS, key, owner), sums)
    return [[(*dims, *sums) for dims, sums in sorted(level.items())]
            for level in (hourly, models, days)]


def _add(level: dict[tuple[Any, ...], list[int]], dims: tuple[Any, ...],
         sums: list[int]) -> None:
    total = level.get(dims)
    if total is None:
        level[dims] = list(sums)
    else:
        for i, value in enumerate(sums):
            total[i] += value


def _upsert(level: Level) -> str:
    """SQLite's ``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``, a row a set of
    parameters (executemany)."""
    columns = (*level.key, *SUMS)
    return (f"INSERT INTO {level.table.name} ({', '.join(columns)}) "  # noqa: S608
            f"VALUES ({', '.join('?' * len(columns))}) {_on_conflict(level)}")


def _on_conflict(level: Level) -> str:
    name = level.table.name
    updates = ", ".join(f"{c} = {name}.{c} + excluded.{c}" for c in SUMS)
    return f"ON CONFLICT ({', '.join(level.key)}) DO UPDATE SET {updates}"


def unnest(columns: Sequence[tuple[str, str]]) -> str:
    """``SELECT * FROM unnest(…)`` of one array parameter a column: PostgreSQL takes a whole
    batch as one statement of a few parameters (an executemany is a statement a row).
    Numbers and booleans travel as one array literal (:func:`arrays`): asyncpg would check
    each element of a list against three abstract base classes, most of the statement's
    CPU."""
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" if kind == "VARCHAR"
                       else f"CAST(CAST(:{name} AS TEXT) AS {kind}[])" for name, kind in columns)
    return f"SELECT * FROM unnest({arrays})"  # noqa: S608  (names from the code)


def arrays(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The parameters of an :func:`unnest` statement: a list of each text column, an array
    literal (``{1,2,3}``) of each other one."""
    params: dict[str, Any] = {}
    for name, values in zip(names, zip(*rows, strict=True), strict=True):
        if isinstance(values[0], str):
            params[name] = list(values)
        else:
            params[name] = f"{{{','.join(map(str, values))}}}"
    return params


def _pg_upsert(level: Level) -> TextClause:
    """PostgreSQL's upsert of a level's rows, as arrays (:func:`unnest`)."""
    columns = [(c, "BIGINT" if c in (level.time, *SUMS) else "VARCHAR") for c in level.key]
    columns += [(c, "BIGINT") for c in SUMS]
    return text(f"INSERT INTO {level.table.name} ({', '.join(c for c, _ in columns)}) "
                f"{unnest(columns)} {_on_conflict(level)}")


SQLITE_UPSERTS = [_upsert(level) for level in LEVELS]
_PG_UPSERTS = [_pg_upsert(level) for level in LEVELS]


def add_sync(conn: Connection, events: Iterable[Event]) -> None:
    """Add stored events to the roll-ups, in the caller's transaction (SQLite's writer),
    on the driver's cursor: SQLAlchemy's statement handling would cost more than the
    upserts of a small batch."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for statement, rows in zip(SQLITE_UPSERTS, deltas(events), strict=True):
            if rows:
                cursor.executemany(statement, rows)
    finally:
        cursor.close()


async def add(conn: AsyncConnection, events: Iterable[Event]) -> None:
    """Add stored events to the roll-ups, in the caller's transaction (PostgreSQL): one
    statement a level, its rows as arrays."""
    for statement, rows, level in zip(_PG_UPSERTS, deltas(events), LEVELS, strict=True):
        if rows:
            await conn.execute(statement, arrays((*level.key, *SUMS), rows))


# -- the read side --------------------------------------------------------------------------

Span = tuple[int | None, int | None]  # [start, end) in epoch ms; None is unbounded


def split(start: int | None, end: int | None, widths: Sequence[int],
          ) -> list[tuple[int | None, Span]]:
    """``[start, end)`` as whole buckets of the first width, then of the next width at the
    edges, and so on; what no width covers (partial hours) has width None: raw events."""
    if not widths:
        return [(None, (start, end))]
    width, finer = widths[0], widths[1:]
    first = None if start is None else -(-start // width) * width  # ceiling
    last = None if end is None else end // width * width
    if first is not None and last is not None and first >= last:
        return split(start, end, finer)  # no whole bucket inside
    spans: list[tuple[int | None, Span]] = []
    if start is not None and first is not None and start < first:
        spans += split(start, first, finer)
    spans.append((width, (first, last)))
    if end is not None and last is not None and last < end:
        spans += split(last, end, finer)
    return spans


def source(period: Period, *, dims: Iterable[str] = (), where: Mapping[str, str],
           bucket_ms: int | None = None) -> Subquery:
    """The ledger over ``period`` as rows of ``ts_ms``, the ``dims`` and ``where`` columns
    (key_id, model, model_owner) and ``SUMS``: roll-up rows for whole days or hours (ts_ms
    their first ms), raw events for partial hours. ``where`` is column = value;
    ``bucket_ms``, when the caller groups by time, the width of its buckets (a multiple of
    an hour). Summing the rows gives the raw events' sums; grouping them by the dims or by
    ts_ms buckets of ``bucket_ms`` gives the raw events' groups."""
    columns = sorted({*dims, *where})
    if "key_id" not in columns:
        levels = [HOURLY_MODELS]
    elif "model" not in columns and (bucket_ms is None or bucket_ms % DAY_MS == 0):
        levels = [DAILY_KEYS, HOURLY]
    else:
        levels = [HOURLY]
    by_width = {level.width: level for level in levels}
    parts: list[Select[Any]] = []
    for width, (start, end) in split(period.start_ms, period.end_ms, list(by_width)):
        if width is None:
            parts.append(select(
                EVENTS.ts_ms, *(EVENTS[c] for c in columns),
                literal(1, BigInteger).label("requests"),
                case((EVENTS.outcome != "ok", 1), else_=0).label("errors"),
                EVENTS.input_tokens, EVENTS.output_tokens, EVENTS.cost_nanos)
                .where(*_equal(EVENTS, where), *_within(EVENTS.ts_ms, start, end)))
            continue
        table = by_width[width].table.c
        time = table[by_width[width].time]
        parts.append(select(time.label("ts_ms"), *(table[c] for c in columns),
                            *(table[name] for name in SUMS))
                     .where(*_equal(table, where), *_within(time, start, end)))
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("ledger")


def _equal(columns: Any, where: Mapping[str, str]) -> list[ColumnElement[bool]]:
    return [columns[name] == value for name, value in where.items()]


def _within(column: Any, start: int | None, end: int | None) -> list[ColumnElement[bool]]:
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column < end)
    return clauses


async def spent_nanos(conn: AsyncConnection, key_id: str) -> int:
    """Everything ``key_id`` has been billed: the sum of its daily roll-ups, which hold
    every event the ledger has stored (even those retention has pruned)."""
    query = select(func.coalesce(func.sum(BY_DAY_KEY.c.cost_nanos), 0)).where(
        BY_DAY_KEY.c.key_id == key_id)
    return int((await conn.execute(query)).scalar_one())


# -- retention ------------------------------------------------------------------------------

PRUNE_CHUNK = 10_000


def retention_cutoff(now_ms: int, days: int) -> int:
    """The first ms kept: ``days`` before now, down to the hour (a pruned hour is pruned
    whole, so no report mixes an hour's raw events with its roll-up)."""
    moment = now_ms - days * 86_400_000
    return moment - moment % HOUR_MS


async def prune_events(engine: Any, before_ms: int, *, chunk: int = PRUNE_CHUNK) -> int:
    """Delete raw events older than ``before_ms``, ``chunk`` rows a transaction (each a
    short hold of SQLite's write lock); the roll-ups keep their sums. How many went."""
    table = UsageEventRow.__table__  # type: ignore[attr-defined]
    pruned = 0
    while True:
        oldest = select(EVENTS.id).where(EVENTS.ts_ms < before_ms).limit(chunk)
        async with engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(EVENTS.id.in_(oldest.scalar_subquery())))
        pruned += int(result.rowcount)
        if int(result.rowcount) < chunk:
            return pruned
