"""AuditService: the audit trail, a page at a time (admin only)."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2
from grpc import aio

from ai1net.client.convert import timestamp
from ai1net.server import audit, reports
from ai1net.server.auth import require_role
from ai1net.server.storage import Database
from ai1net.server.tables import AuditEventRow
from ai1net.v1 import audit_pb2, audit_pb2_grpc

Context = aio.ServicerContext[Any, Any]


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    def __init__(self, *, db: Database) -> None:
        self._db = db

    async def ListAuditEvents(self, request: audit_pb2.ListAuditEventsRequest,
                              context: Context) -> audit_pb2.ListAuditEventsResponse:
        require_role("admin")
        period = reports.parse_period(getattr(request, "from"), request.to)
        async with self._db.session() as session:
            rows, token = await audit.events(
                session=session, start_ms=period.start_ms, end_ms=period.end_ms,
                actor=request.actor, action=request.action, page_size=request.page_size,
                page_token=request.page_token)
        return audit_pb2.ListAuditEventsResponse(events=[to_proto(row) for row in rows],
                                                 next_page_token=token)


def to_proto(row: AuditEventRow) -> audit_pb2.AuditEvent:
    changes = struct_pb2.Struct()
    changes.update(row.changes)
    return audit_pb2.AuditEvent(id=row.id, at=timestamp(audit.moment_of(row.id)),
                                actor_key_id=row.actor_key_id, action=row.action,
                                target=row.target, request_id=row.request_id, changes=changes)
