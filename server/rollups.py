"""The ledger's hourly roll-ups: what reports read instead of millions of raw events.

Two tables sum the events by hour: ``usage_hourly`` by key and model (consumers' views,
reports by key, a key's spend) and ``usage_hourly_models`` by model alone (admins' and
providers' views: a marketplace has many more keys than models). The ledger writes a
batch's deltas in the transaction that writes the batch's events, counting only the
events that transaction stored (an id already stored — a retried batch, a replayed spool —
adds nothing), so the roll-ups equal the raw sums at every commit, whatever stops the
process between two batches. There is no database trigger: one upsert per distinct
(hour, key, model) of a batch, summed in Python first, costs a fraction of a trigger's
row-by-row update.

A report over ``[from, to)`` reads the roll-ups for the whole hours inside it and raw
events only for the partial hours at its edges (:func:`source`), so its answer is the raw
sum to the event. Raw events older than ``AI1NET_USAGE_RETENTION_DAYS`` may be deleted
(:func:`prune_events`); the roll-ups stay, and so do reports over whole hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    Subquery,
    case,
    delete,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from ai1net.server.tables import UsageEventRow, UsageHourModelRow, UsageHourRow

if TYPE_CHECKING:
    from ai1net.server.reports import Period
    from ai1net.server.usage import UsageEvent

HOUR_MS = 3_600_000
SUMS = ("requests", "errors", "input_tokens", "output_tokens", "cost_nanos")
KEYED_DIMS = ("hour_ms", "key_id", "model", "model_owner")
MODEL_DIMS = ("hour_ms", "model", "model_owner")

EVENTS = UsageEventRow.__table__.c  # type: ignore[attr-defined]
KEYED = UsageHourRow.__table__  # type: ignore[attr-defined]
BY_MODEL = UsageHourModelRow.__table__  # type: ignore[attr-defined]


# -- the write side -------------------------------------------------------------------------

Row = tuple[Any, ...]


def deltas(events: Iterable[UsageEvent]) -> tuple[list[Row], list[Row]]:
    """A batch summed per (hour, key, model, owner) and per (hour, model, owner): rows of
    ``KEYED_DIMS + SUMS`` and ``MODEL_DIMS + SUMS``, sorted (concurrent writers on
    PostgreSQL then lock the rows they share in the same order, and never deadlock)."""
    keyed: dict[tuple[int, str, str, str], list[int]] = {}
    for event in events:
        dims = (event.ts_ms - event.ts_ms % HOUR_MS, event.key_id, event.model,
                event.model_owner)
        sums = keyed.get(dims)
        if sums is None:
            keyed[dims] = sums = [0, 0, 0, 0, 0]
        sums[0] += 1
        sums[1] += event.outcome != "ok"
        sums[2] += event.input_tokens
        sums[3] += event.output_tokens
        sums[4] += event.cost_nanos
    by_model: dict[tuple[int, str, str], list[int]] = {}
    for (hour, _key, model, owner), sums in keyed.items():
        total = by_model.get((hour, model, owner))
        if total is None:
            by_model[(hour, model, owner)] = list(sums)
        else:
            for i, value in enumerate(sums):
                total[i] += value
    return ([(*dims, *sums) for dims, sums in sorted(keyed.items())],
            [(*dims, *sums) for dims, sums in sorted(by_model.items())])


def _upsert(table: str, dims: Sequence[str], *, named: bool) -> str:
    """``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``: the same text on SQLite
    and PostgreSQL but for the parameter style."""
    columns = (*dims, *SUMS)
    values = ", ".join(f":{c}" for c in columns) if named else ", ".join("?" * len(columns))
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in SUMS)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(dims)}) DO UPDATE SET {updates}")


SQLITE_UPSERTS = (_upsert("usage_hourly", KEYED_DIMS, named=False),
                  _upsert("usage_hourly_models", MODEL_DIMS, named=False))
_NAMED_UPSERTS = (text(_upsert("usage_hourly", KEYED_DIMS, named=True)),
                  text(_upsert("usage_hourly_models", MODEL_DIMS, named=True)))


def add_sync(conn: Connection, events: Iterable[UsageEvent]) -> None:
    """Add stored events to the roll-ups, in the caller's transaction (SQLite's writer)."""
    for statement, rows in zip(SQLITE_UPSERTS, deltas(events), strict=True):
        if rows:
            conn.exec_driver_sql(statement, rows)


async def add(conn: AsyncConnection, events: Iterable[UsageEvent]) -> None:
    """Add stored events to the roll-ups, in the caller's transaction."""
    for statement, rows, dims in zip(_NAMED_UPSERTS, deltas(events), (KEYED_DIMS, MODEL_DIMS),
                                     strict=True):
        if rows:
            names = (*dims, *SUMS)
            await conn.execute(statement, [dict(zip(names, row, strict=True)) for row in rows])


# -- the read side --------------------------------------------------------------------------


def split(period: Period) -> tuple[list[tuple[int | None, int | None]],
                                   list[tuple[int | None, int | None]]]:
    """``period`` as the whole hours the roll-ups answer and the partial hours at its
    edges that only raw events can: two lists of ``[start, end)`` (None is unbounded)."""
    start, end = period.start_ms, period.end_ms
    first = None if start is None else -(-start // HOUR_MS) * HOUR_MS  # ceiling
    last = None if end is None else end // HOUR_MS * HOUR_MS
    if first is not None and last is not None and first >= last:
        return [], [(start, end)]  # no whole hour inside
    edges: list[tuple[int | None, int | None]] = []
    if start is not None and first is not None and start < first:
        edges.append((start, first))
    if end is not None and last is not None and last < end:
        edges.append((last, end))
    return [(first, last)], edges


def source(period: Period, *, by_key: bool, where: Mapping[str, str]) -> Subquery:
    """The ledger over ``period`` as rows of (ts_ms, [key_id,] model, model_owner, *SUMS):
    roll-up rows for whole hours (ts_ms is the hour), raw events for the partial hours.
    ``where`` is column = value (key_id, model, model_owner); ``by_key`` keeps key_id
    (reading the larger roll-up). Summing the rows gives the raw events' sums."""
    if "key_id" in where:
        by_key = True
    table = KEYED if by_key else BY_MODEL
    hours, edges = split(period)
    parts: list[Select[Any]] = []
    for start, end in hours:
        dims = [table.c.hour_ms.label("ts_ms"), *_keyed(table.c, by_key)]
        parts.append(select(*dims, *(table.c[name] for name in SUMS))
                     .where(*_equal(table.c, where), *_within(table.c.hour_ms, start, end)))
    for start, end in edges:
        parts.append(select(
            EVENTS.ts_ms, *_keyed(EVENTS, by_key), literal(1, BigInteger).label("requests"),
            case((EVENTS.outcome != "ok", 1), else_=0).label("errors"), EVENTS.input_tokens,
            EVENTS.output_tokens, EVENTS.cost_nanos)
            .where(*_equal(EVENTS, where), *_within(EVENTS.ts_ms, start, end)))
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("ledger")


def _keyed(columns: Any, by_key: bool) -> list[Any]:
    return [*([columns.key_id] if by_key else []), columns.model, columns.model_owner]


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
    """Everything ``key_id`` has been billed: the sum of its roll-ups, which hold every
    event the ledger has stored (even those retention has pruned)."""
    query = select(func.coalesce(func.sum(KEYED.c.cost_nanos), 0)).where(
        KEYED.c.key_id == key_id)
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
