"""UsageService: the ledger's queries, providers' reports and their reconciliation."""

from __future__ import annotations

from typing import Any

from grpc import aio

from ai1net.client.convert import timestamp
from ai1net.server import reports, statement
from ai1net.server.auth import current_principal, require_role
from ai1net.server.errors import Unavailable
from ai1net.server.feedback import FeedbackBoard
from ai1net.server.money import nanos_to_usd
from ai1net.server.storage import Database
from ai1net.server.usage import Ledger
from ai1net.v1 import usage_pb2, usage_pb2_grpc

Context = aio.ServicerContext[Any, Any]
# Who may report and reconcile; ownership is reports.owners_for's to check.
PROVIDERS = ("admin", "provider")


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    def __init__(self, *, db: Database, ledger: Ledger, feedback: FeedbackBoard) -> None:
        self._db = db
        self._ledger = ledger
        self._feedback = feedback

    async def GetUsage(self, request: usage_pb2.GetUsageRequest,
                       context: Context) -> usage_pb2.GetUsageResponse:
        period = reports.parse_period(getattr(request, "from"), request.to)
        await self._flush()
        async with self._db.session() as session:
            report = await reports.usage_totals(
                session=session, caller=current_principal(), period=period,
                model=request.model, group_by=request.group_by)
        return usage_pb2.GetUsageResponse(
            usage=totals_message(report.totals),
            groups=[usage_pb2.UsageGroup(group=name, usage=totals_message(totals))
                    for name, totals in report.groups])

    async def ReportUsage(self, request: usage_pb2.ReportUsageRequest,
                          context: Context) -> usage_pb2.ReportUsageResponse:
        caller = require_role(*PROVIDERS)
        period = reports.parse_period(getattr(request, "from"), request.to)
        counts = reports.Counts(request.usage.requests, request.usage.tokens_processed)
        async with self._db.session() as session:
            report_id = await reports.store_report(
                session=session, caller=caller, model=request.model,
                period=period, counts=counts)
        return usage_pb2.ReportUsageResponse(id=report_id)

    async def GetReconciliation(self, request: usage_pb2.GetReconciliationRequest,
                                context: Context) -> usage_pb2.GetReconciliationResponse:
        caller = require_role(*PROVIDERS)
        period = reports.parse_period(getattr(request, "from"), request.to)
        await self._flush()
        async with self._db.session() as session:
            result = await reports.reconcile(session=session, caller=caller,
                                             model=request.model, period=period)
        return usage_pb2.GetReconciliationResponse(
            model=result.model, gateway=counts_message(result.gateway),
            provider=counts_message(result.provider),
            difference=counts_message(result.difference),
            to=reports.format_time(period.end_ms),
            **{"from": reports.format_time(period.start_ms)})

    async def SubmitFeedback(self, request: usage_pb2.SubmitFeedbackRequest,
                             context: Context) -> usage_pb2.Feedback:
        await self._flush()  # the call being rated may still be in this replica's buffer
        rating = await self._feedback.rate(current_principal(),
                                           generation_id=request.generation_id,
                                           score=request.score, comment=request.comment)
        return usage_pb2.Feedback(generation_id=rating.generation_id, model=rating.model,
                                  score=rating.score, comment=rating.comment,
                                  created_at=timestamp(rating.created_at))

    async def GetStatement(self, request: usage_pb2.GetStatementRequest,
                           context: Context) -> usage_pb2.Statement:
        caller = require_role(*PROVIDERS)
        await self._flush()
        async with self._db.session() as session:
            result = await statement.monthly_statement(
                session=session, caller=caller, month=request.month, provider=request.provider)
        return usage_pb2.Statement(
            month=result.month, provider=result.provider,
            to=reports.format_time(result.period.end_ms),
            models=[usage_pb2.StatementLine(
                model=line.model, gateway=counts_message(line.gateway),
                earnings_usd=nanos_to_usd(line.earnings_nanos),
                earnings_nanos=line.earnings_nanos, reported=counts_message(line.reported),
                difference=counts_message(line.difference)) for line in result.lines],
            **{"from": reports.format_time(result.period.start_ms)})

    async def _flush(self) -> None:
        """Make what this replica has just accounted visible to the query."""
        try:
            await self._ledger.flush()
        except Exception as exc:
            raise Unavailable("usage accounted moments ago could not be stored yet; "
                              "try again") from exc


def totals_message(totals: reports.Totals) -> usage_pb2.UsageTotals:
    return usage_pb2.UsageTotals(
        requests=totals.requests, tokens_processed=totals.tokens_processed,
        input_tokens=totals.input_tokens, output_tokens=totals.output_tokens,
        errors=totals.errors, cost_usd=nanos_to_usd(totals.cost_nanos),
        cost_nanos=totals.cost_nanos)


def counts_message(counts: reports.Counts) -> usage_pb2.UsageCounts:
    return usage_pb2.UsageCounts(requests=counts.requests,
                                 tokens_processed=counts.tokens_processed)
