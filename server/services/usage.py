"""UsageService: the ledger's queries, providers' reports and their reconciliation."""

from __future__ import annotations

from typing import Any

from grpc import StatusCode, aio

from ai1net.v1 import usage_pb2, usage_pb2_grpc

Context = aio.ServicerContext[Any, Any]


class UsageServicer(usage_pb2_grpc.UsageServiceServicer):
    async def GetUsage(self, request: usage_pb2.GetUsageRequest,
                       context: Context) -> usage_pb2.GetUsageResponse:
        await context.abort(StatusCode.UNIMPLEMENTED, "usage queries land with the usage issue")
        raise AssertionError

    async def ReportUsage(self, request: usage_pb2.ReportUsageRequest,
                          context: Context) -> usage_pb2.ReportUsageResponse:
        await context.abort(StatusCode.UNIMPLEMENTED, "usage reports land with the usage issue")
        raise AssertionError

    async def GetReconciliation(self, request: usage_pb2.GetReconciliationRequest,
                                context: Context) -> usage_pb2.GetReconciliationResponse:
        await context.abort(StatusCode.UNIMPLEMENTED, "reconciliation lands with the usage issue")
        raise AssertionError
