"""The client's exception tree, and the one place gRPC errors become it.

    Ai1netError                    any failed call (code, message, reason, metadata)
    ├── AuthenticationError        UNAUTHENTICATED: missing, unknown or revoked key
    ├── PermissionDenied           PERMISSION_DENIED: wrong role, or not the owner
    ├── NotFound                   NOT_FOUND
    ├── AlreadyExists              ALREADY_EXISTS (a model name taken, a generation rated twice)
    ├── InvalidArgument            INVALID_ARGUMENT, with the offending ``field``
    ├── FailedPrecondition         FAILED_PRECONDITION (routing found no model)
    ├── RateLimited                RESOURCE_EXHAUSTED, with ``retry_after`` seconds
    ├── BudgetExceeded             RESOURCE_EXHAUSTED, reason BUDGET_EXCEEDED
    ├── UpstreamError              UNAVAILABLE, reason UPSTREAM_ERROR: the provider failed
    ├── Unavailable                UNAVAILABLE: the gateway unreachable, draining, or shedding
    │                              load (reason OVERLOADED, with ``retry_after``)
    ├── DeadlineExceeded           DEADLINE_EXCEEDED: the call's timeout, or the provider's
    └── Cancelled                  CANCELLED

The gateway sends a ``google.rpc.Status`` in the ``grpc-status-details-bin`` trailer with an
``ErrorInfo`` (the reason, and metadata such as the field) and, when waiting helps, a
``RetryInfo``; the reason keeps distinctions one status code cannot (402 vs 429, 502 vs 503).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

DETAILS_TRAILER = "grpc-status-details-bin"


class Ai1netError(Exception):
    """A call the gateway refused or could not complete."""

    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None,
                 reason: str = "", metadata: Mapping[str, str] | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.name}, " \
               f"reason={self.reason!r})"


class AuthenticationError(Ai1netError):
    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(Ai1netError):
    default_code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(Ai1netError):
    default_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(Ai1netError):
    default_code = grpc.StatusCode.ALREADY_EXISTS


class InvalidArgument(Ai1netError):
    default_code = grpc.StatusCode.INVALID_ARGUMENT

    @property
    def field(self) -> str | None:
        """The request field the gateway named, e.g. ``parameters.temperature``."""
        return self.metadata.get("field")


class FailedPrecondition(Ai1netError):
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class RateLimited(Ai1netError):
    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class BudgetExceeded(Ai1netError):
    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UpstreamError(Ai1netError):
    default_code = grpc.StatusCode.UNAVAILABLE


class Unavailable(Ai1netError):
    default_code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(Ai1netError):
    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(Ai1netError):
    default_code = grpc.StatusCode.CANCELLED


_BY_CODE: dict[grpc.StatusCode, type[Ai1netError]] = {
    error.default_code: error for error in (
        AuthenticationError, PermissionDenied, NotFound, AlreadyExists, InvalidArgument,
        FailedPrecondition, RateLimited, Unavailable, DeadlineExceeded, Cancelled)
}
# Reasons that pick a sibling of what the status code alone would choose.
_BY_REASON: dict[str, type[Ai1netError]] = {
    "BUDGET_EXCEEDED": BudgetExceeded,
    "UPSTREAM_ERROR": UpstreamError,
}


def from_rpc_error(error: grpc.RpcError) -> Ai1netError:
    """The typed error for a failed call (sync or asyncio)."""
    call: Any = error  # both grpc.Call and grpc.aio.AioRpcError carry these
    code: grpc.StatusCode = call.code()
    message: str = call.details() or code.name
    reason, metadata, retry_after = _details(call.trailing_metadata())
    kind = _BY_REASON.get(reason) or _BY_CODE.get(code, Ai1netError)
    return kind(message, code=code, reason=reason, metadata=metadata, retry_after=retry_after)


def _details(trailers: Any) -> tuple[str, dict[str, str], float | None]:
    """ErrorInfo's reason and metadata, and RetryInfo's delay, from the status trailer."""
    status = status_pb2.Status()
    for key, value in trailers or ():
        if key == DETAILS_TRAILER and isinstance(value, bytes):
            try:
                status.ParseFromString(value)
            except DecodeError:
                return "", {}, None
    reason, metadata, retry_after = "", {}, None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(retry):
            retry_after = retry.retry_delay.ToTimedelta().total_seconds()
    return reason, metadata, retry_after
