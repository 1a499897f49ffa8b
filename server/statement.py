"""A provider's monthly earnings statement: per model what the gateway counted and
earned, beside what the provider reported for periods overlapping the month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Executable, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ai1net.server import rollups, rules
from ai1net.server.errors import PermissionDenied
from ai1net.server.keys import Principal
from ai1net.server.reports import EPOCH, REPORTS, Counts, Period, _run


@dataclass(frozen=True, slots=True)
class Line:
    model: str
    gateway: Counts
    earnings_nanos: int
    reported: Counts

    @property
    def difference(self) -> Counts:
        """Reported minus counted, as reconciliation says it."""
        return self.reported - self.gateway


@dataclass(frozen=True, slots=True)
class Statement:
    month: str
    provider: str
    period: Period
    lines: list[Line]


def month_bounds(month: str) -> tuple[int, int]:
    """The month's [start, end) in epoch milliseconds."""
    rules.STATEMENT["month"].check("month", month)
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return _ms(start), _ms(end)


def _ms(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds()) * 1000


def statement_owner(caller: Principal, provider: str) -> str | None:
    """Whose statement: a provider's own; an admin names one, or none for every provider's
    (None)."""
    rules.STATEMENT["provider"].check("provider", provider)
    if caller.is_admin:
        return provider or None
    if caller.role != "provider":
        raise PermissionDenied("only providers and admins have earnings statements")
    if provider and provider != caller.id:
        raise PermissionDenied("a provider sees only its own statement")
    return caller.id


async def monthly_statement(*, session: AsyncSession, caller: Principal, month: str,
                            provider: str = "") -> Statement:
    start_ms, end_ms = month_bounds(month)
    period = Period(start_ms, end_ms)
    owner = statement_owner(caller, provider)
    reports = [REPORTS.from_ms < end_ms, REPORTS.to_ms > start_ms]
    if owner is not None:
        reports.append(REPORTS.owner == owner)
    ledger = rollups.source(period, dims=["model"],
                            where={} if owner is None else {"model_owner": owner})
    ours = (select(ledger.c.model, func.sum(ledger.c.requests),
                   func.sum(ledger.c.input_tokens + ledger.c.output_tokens),
                   func.sum(ledger.c.cost_nanos))
            .group_by(ledger.c.model))
    theirs = (select(REPORTS.model, func.sum(REPORTS.requests),
                     func.sum(REPORTS.tokens_processed))
              .where(*reports).group_by(REPORTS.model))
    counted = {str(row[0]): _ints(row[1:]) for row in await _rows(session, ours)}
    reported = {str(row[0]): _ints(row[1:]) for row in await _rows(session, theirs)}
    lines = []
    for name in sorted(counted.keys() | reported.keys()):
        requests, tokens, earnings = counted.get(name, [0, 0, 0])
        lines.append(Line(model=name, gateway=Counts(requests, tokens), earnings_nanos=earnings,
                          reported=Counts(*reported.get(name, [0, 0]))))
    return Statement(month=month, provider=owner or "", period=period, lines=lines)


async def _rows(session: AsyncSession, query: Executable) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in (await _run(session, query)).all()]


def _ints(values: tuple[Any, ...]) -> list[int]:
    # SUM is NULL over no rows, and NUMERIC (Decimal) on PostgreSQL.
    return [int(value or 0) for value in values]
