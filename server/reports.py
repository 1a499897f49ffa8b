"""The ledger's read side: usage totals, providers' own reports, and their reconciliation.

Every aggregation runs in SQL over the ledger's hourly roll-ups, with raw events only for
the partial hours at a period's edges (``server/rollups.py``), and returns exact integer
sums, equal to the raw events' (money stays in nano-dollars until the edge). Who sees what
follows the role table of CONTRACT §1: a consumer its own key's calls, a provider its own
models' traffic, an admin everything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Executable,
    Result,
    func,
    literal_column,
    select,
)
from sqlalchemy.sql import Subquery
from sqlmodel.ext.asyncio.session import AsyncSession

from ai1net.common.ids import new_id
from ai1net.server import audit, rollups, rules
from ai1net.server.errors import InvalidArgument, NotFound, PermissionDenied
from ai1net.server.keys import Principal
from ai1net.server.storage import utcnow
from ai1net.server.tables import ModelRow, UsageReportRow

GROUPS = rules.GROUP_BY
BUCKET_MS = {"hour": 3_600_000, "day": 86_400_000}
GROUP_COLUMNS = {"model": "model", "key": "key_id"}
_RFC3339 = re.compile(  # ASCII digits only: \d alone also takes "٢" and friends
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

REPORTS = UsageReportRow.__table__.c  # type: ignore[attr-defined]
MODELS = ModelRow.__table__.c  # type: ignore[attr-defined]


# -- periods --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """``[start_ms, end_ms)`` in epoch milliseconds; None is unbounded."""

    start_ms: int | None = None
    end_ms: int | None = None


def parse_time(value: str, field: str) -> int | None:
    """An RFC 3339 time as epoch milliseconds; empty means unbounded."""
    text = value.strip().upper()
    if not text:
        return None
    # An unencoded "+" in a query string arrives as a space: "...00:00:00 02:00".
    if len(text) > 6 and text[-6] == " " and text[-3] == ":":
        text = f"{text[:-6]}+{text[-5:]}"
    if not _RFC3339.fullmatch(text):
        raise InvalidArgument(field, "must be an RFC 3339 time, like 2025-01-31T12:00:00Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgument(field, f"is not a valid time ({exc})") from exc
    return (moment - EPOCH) // timedelta(milliseconds=1)


def parse_period(start: str, end: str) -> Period:
    """``from``/``to`` as a period; ``to`` must come after ``from``."""
    period = Period(parse_time(start, "from"), parse_time(end, "to"))
    if period.start_ms is not None and period.end_ms is not None \
            and period.start_ms >= period.end_ms:
        raise InvalidArgument("to", "must be later than from")
    return period


def format_time(ms: int | None) -> str:
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


# -- usage totals ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nanos: int = 0

    @property
    def tokens_processed(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.requests + other.requests, self.errors + other.errors,
                      self.input_tokens + other.input_tokens,
                      self.output_tokens + other.output_tokens,
                      self.cost_nanos + other.cost_nanos)


@dataclass(frozen=True, slots=True)
class UsageReport:
    totals: Totals
    groups: list[tuple[str, Totals]] = field(default_factory=list)


async def usage_totals(*, session: AsyncSession, caller: Principal, period: Period,
                       model: str = "", group_by: str = "") -> UsageReport:
    """The caller's view of the ledger over ``period``, optionally grouped."""
    if group_by and group_by not in GROUPS:
        raise InvalidArgument("group_by", f"must be one of {', '.join(GROUPS)}")
    if model and caller.role == "provider":
        owners = await model_owners(session=session, name=model)
        if owners and caller.id not in owners:
            raise PermissionDenied(f"model {model!r} belongs to another provider")
    where = _scope(caller)
    if model:
        where["model"] = model
    dims = [GROUP_COLUMNS[group_by]] if group_by in GROUP_COLUMNS else []
    ledger = rollups.source(period, dims=dims, where=where, bucket_ms=BUCKET_MS.get(group_by))
    label = _group_label(group_by, ledger)
    columns = [func.sum(ledger.c[name]) for name in rollups.SUMS]
    if label is None:
        row = (await _run(session, select(*columns))).one()
        return UsageReport(_totals(row))
    query = select(label, *columns).group_by(label).order_by(label)
    rows = (await _run(session, query)).all()
    groups = [(_render_group(group_by, row[0]), _totals(row[1:])) for row in rows]
    return UsageReport(sum((t for _, t in groups), Totals()), groups)


async def _run(session: AsyncSession, query: Executable) -> Result[Any]:
    """A Core query on the session's connection (SQLModel's ``exec`` is typed for ORM ones)."""
    connection = await session.connection()
    return await connection.execute(query)


def _scope(caller: Principal) -> dict[str, str]:
    """What the caller may see, as column = value over the ledger."""
    if caller.is_admin:
        return {}
    if caller.role == "provider":
        return {"model_owner": caller.id}
    return {"key_id": caller.id}


def _group_label(group_by: str, ledger: Subquery) -> Any:
    if group_by in ("model", "key"):
        return ledger.c[GROUP_COLUMNS[group_by]]
    if group_by in BUCKET_MS:
        # Inline literals so that SELECT and GROUP BY are the same text on PostgreSQL;
        # BIGINT / BIGINT is integer division on both PostgreSQL and SQLite.
        width = literal_column(str(BUCKET_MS[group_by]), BigInteger)
        return ledger.c.ts_ms // width * width
    return None


def _render_group(group_by: str, value: Any) -> str:
    return format_time(int(value)) if group_by in BUCKET_MS else str(value)


def _totals(row: Sequence[Any]) -> Totals:
    # SUM is NULL over no rows, and NUMERIC (Decimal) on PostgreSQL.
    requests, errors, input_tokens, output_tokens, cost = (int(v or 0) for v in row)
    return Totals(requests, errors, input_tokens, output_tokens, cost)


# -- ownership ------------------------------------------------------------------------------


async def owners_for(*, session: AsyncSession, caller: Principal, model: str) -> list[str]:
    """The model's owners, if the caller may report on it: an admin any model, a provider
    the models it owns or owned (a deleted model's history stays its owner's)."""
    if caller.role not in ("admin", "provider"):
        raise PermissionDenied("only providers and admins report and reconcile usage")
    owners = await model_owners(session=session, name=model)
    if not owners:
        raise NotFound(f"model {model!r} not found")
    if not caller.is_admin and caller.id not in owners:
        raise PermissionDenied(f"model {model!r} belongs to another provider")
    return owners


async def model_owners(*, session: AsyncSession, name: str) -> list[str]:
    """Owners of every model ever registered under ``name``, the latest first."""
    query = (select(MODELS.owner).where(MODELS.name == name)
             .order_by(MODELS.created_at.desc()))
    return list(dict.fromkeys((await _run(session, query)).scalars()))


# -- provider reports and reconciliation ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    requests: int = 0
    tokens_processed: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.requests - other.requests,
                      self.tokens_processed - other.tokens_processed)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    model: str
    period: Period
    gateway: Counts
    provider: Counts

    @property
    def difference(self) -> Counts:
        """Provider minus gateway."""
        return self.provider - self.gateway


async def store_report(*, session: AsyncSession, caller: Principal, model: str,
                       period: Period, counts: Counts) -> str:
    """Keep a provider's own count for one of its models; returns the report id."""
    if not model:
        raise InvalidArgument("model", "is required")
    if period.start_ms is None or period.end_ms is None:
        raise InvalidArgument("from" if period.start_ms is None else "to", "is required")
    for name in ("requests", "tokens_processed"):
        rules.USAGE[f"usage.{name}"].check(f"usage.{name}", getattr(counts, name))
    owners = await owners_for(session=session, caller=caller, model=model)
    owner = owners[0] if caller.is_admin else caller.id
    row = UsageReportRow(id=new_id("rep"), model=model, owner=owner, from_ms=period.start_ms,
                         to_ms=period.end_ms, requests=counts.requests,
                         tokens_processed=counts.tokens_processed, created_at=utcnow())
    session.add(row)
    audit.add(session, "usage.report", model, {
        "id": row.id, "owner": owner, "from": format_time(period.start_ms),
        "to": format_time(period.end_ms), "requests": counts.requests,
        "tokens_processed": counts.tokens_processed})
    await session.commit()
    return row.id


async def reconcile(*, session: AsyncSession, caller: Principal, model: str,
                    period: Period) -> Reconciliation:
    """The gateway's count of ``model`` over ``period`` beside the provider's reports for
    periods lying within it. A provider sees only its own side of a reused model name."""
    if not model:
        raise InvalidArgument("model", "is required")
    await owners_for(session=session, caller=caller, model=model)
    owner = caller.id if caller.role == "provider" else None
    where = {"model": model}
    reports = [REPORTS.model == model]
    if period.start_ms is not None:
        reports.append(REPORTS.from_ms >= period.start_ms)
    if period.end_ms is not None:
        reports.append(REPORTS.to_ms <= period.end_ms)
    if owner is not None:
        where["model_owner"] = owner
        reports.append(REPORTS.owner == owner)
    ledger = rollups.source(period, where=where)
    ours = select(func.sum(ledger.c.requests),
                  func.sum(ledger.c.input_tokens + ledger.c.output_tokens))
    theirs = select(func.sum(REPORTS.requests), func.sum(REPORTS.tokens_processed))
    return Reconciliation(
        model=model, period=period,
        gateway=_counts((await _run(session, ours)).one()),
        provider=_counts((await _run(session, theirs.where(*reports))).one()))


def _counts(row: Sequence[Any]) -> Counts:
    requests, tokens = (int(v or 0) for v in row)
    return Counts(requests, tokens)
