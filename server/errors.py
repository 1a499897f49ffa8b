"""The domain's exception tree, and its one mapping to gRPC statuses.

    GatewayError
    ├── InvalidArgument          INVALID_ARGUMENT    (names the field)
    │   └── ProviderRejected     INVALID_ARGUMENT    (the provider said 400/422)
    ├── Unauthenticated          UNAUTHENTICATED
    ├── PermissionDenied         PERMISSION_DENIED
    ├── NotFound                 NOT_FOUND
    ├── AlreadyExists            ALREADY_EXISTS
    ├── NoCandidate              FAILED_PRECONDITION (routing found no model)
    ├── RateLimited              RESOURCE_EXHAUSTED  + RetryInfo
    ├── BudgetExceeded           RESOURCE_EXHAUSTED  (reason BUDGET_EXCEEDED)
    ├── UpstreamError            UNAVAILABLE         (reason UPSTREAM_ERROR)
    │   └── UpstreamViolation    UNAVAILABLE         (an answer over a limit, or not HTTP)
    ├── UpstreamTimeout          DEADLINE_EXCEEDED
    ├── Unavailable              UNAVAILABLE
    │   └── Overloaded           UNAVAILABLE         + RetryInfo (load shed by the gateway)
    └── Cancelled                CANCELLED

Every error carries a machine-readable ``reason`` (google.rpc.ErrorInfo) so the
bridge can keep distinctions that one gRPC code cannot carry (402 vs 429,
502 vs 503). Messages never contain keys or credentials.
"""

from __future__ import annotations

import math
from typing import ClassVar

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

DOMAIN = "ai1net.dev"


class GatewayError(Exception):
    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    reason: ClassVar[str] = "INTERNAL"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, field: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s

    def metadata(self) -> dict[str, str]:
        return {"field": self.field} if self.field else {}


class InvalidArgument(GatewayError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class ProviderRejected(GatewayError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "PROVIDER_REJECTED"


class Unauthenticated(GatewayError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(GatewayError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class NotFound(GatewayError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(GatewayError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class NoCandidate(GatewayError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "NO_CANDIDATE"


class RateLimited(GatewayError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RATE_LIMITED"
    retryable = True


class UpstreamRateLimited(RateLimited):
    reason = "UPSTREAM_RATE_LIMITED"


class BudgetExceeded(GatewayError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "BUDGET_EXCEEDED"


class UpstreamError(GatewayError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UPSTREAM_ERROR"
    retryable = True


class UpstreamViolation(UpstreamError):
    """The provider broke one of its limits or the HTTP rules; ``kind`` names which."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class UpstreamTimeout(GatewayError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "UPSTREAM_TIMEOUT"
    retryable = True


class Unavailable(GatewayError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class Overloaded(Unavailable):
    """The gateway shed the call (a model's or the process's calls in flight, or the
    provider's connections, at their limit); another candidate may still take it."""

    reason = "OVERLOADED"
    retryable = True

    def __init__(self, message: str, *, scope: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.scope = scope  # "process", "model" or "pool"


class Cancelled(GatewayError):
    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"


def to_status(error: GatewayError) -> tuple[grpc.StatusCode, str, tuple[tuple[str, bytes], ...]]:
    """The code, message and trailing metadata (grpc-status-details-bin) of an error."""
    status = status_pb2.Status(code=_rpc_code(error.code), message=error.message)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN,
                                       metadata=error.metadata())
    status.details.add().Pack(info)
    if error.retry_after_s is not None:
        seconds = max(1, math.ceil(error.retry_after_s))
        retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
        status.details.add().Pack(retry)
    trailer = (("grpc-status-details-bin", status.SerializeToString()),)
    return error.code, error.message, trailer


def _rpc_code(code: grpc.StatusCode) -> int:
    value: int = code.value[0]
    assert code_pb2.Code.Name(value)  # the two enumerations share their numbers
    return value
