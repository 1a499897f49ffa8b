"""HTTP errors: the JSON envelopes, and the one table from gRPC status to HTTP status.

The table is grpc-gateway's, with two exceptions read from google.rpc.ErrorInfo:
reason BUDGET_EXCEEDED → 402 and reason UPSTREAM_ERROR → 502 (CONTRACT §2). The same
error renders in AI1NET's envelope or, under ``/openai/v1``, in OpenAI's (CONTRACT §6).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import grpc
import orjson
from aiohttp import web
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from ai1net.common.ids import new_id
from ai1net.server.errors import GatewayError

GRPC_TO_HTTP = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
}
REASON_TO_HTTP = {"BUDGET_EXCEEDED": 402, "UPSTREAM_ERROR": 502}
ERROR_TYPES = {
    400: "invalid_request", 401: "authentication_error", 402: "budget_exceeded",
    403: "permission_denied", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limit_exceeded",
    499: "cancelled", 500: "internal_error", 501: "not_implemented", 502: "upstream_error",
    503: "unavailable", 504: "timeout",
}


class HttpError(Exception):
    """An error the bridge answers itself, before or instead of calling the server."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 retry_after: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.headers = headers or {}


def invalid(field: str, message: str) -> HttpError:
    return HttpError(400, f"{field}: {message}", field=field)


def new_request_id() -> str:
    return new_id("req")


def envelope(error: HttpError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"message": error.message, "code": error.status,
                            "type": ERROR_TYPES.get(error.status, "error"),
                            "request_id": request_id}
    if error.field:
        body["field"] = error.field
    return {"error": body}


def openai_envelope(error: HttpError, _request_id: str) -> dict[str, Any]:
    """OpenAI's shape, so its SDKs raise their typed errors; the request id is a header.

    A server-side field names the body's field: ``parameters.max_tokens`` is ``max_tokens``,
    ``routing.type`` is ``ai1net.routing.type``.
    """
    kind = ERROR_TYPES.get(error.status, "error")
    param = error.field
    if param is not None:
        if param.startswith("parameters."):
            param = param.removeprefix("parameters.")
        elif param.startswith(("routing.", "fallbacks")):
            param = "ai1net." + param
    return {"error": {"message": error.message, "type": kind, "param": param, "code": kind}}


Render = Callable[[HttpError, str], dict[str, Any]]


def error_response(error: HttpError, request_id: str, render: Render = envelope) -> web.Response:
    headers = {"x-request-id": request_id, **error.headers}
    if error.status == 429 or error.retry_after:  # 503s say when to come back too
        headers["Retry-After"] = str(error.retry_after or 1)
    return web.Response(status=error.status, body=orjson.dumps(render(error, request_id)),
                        content_type="application/json", headers=headers)


def from_rpc_error(error: aio.AioRpcError) -> HttpError:
    """The HTTP error for a failed gRPC call, keeping the reason, field and retry delay."""
    code = error.code()
    status = GRPC_TO_HTTP.get(code, 500)
    reason, field, retry_after = "", None, None
    headers: dict[str, str] = {}
    for detail in _details(error.trailing_metadata()):
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, field = info.reason, info.metadata.get("field")
            headers = {k: v for k, v in info.metadata.items() if k.startswith("x-ratelimit-")}
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            retry_after = max(1, math.ceil(retry.retry_delay.ToTimedelta().total_seconds()))
    status = REASON_TO_HTTP.get(reason, status)
    message = error.details() or code.name.lower().replace("_", " ")
    if code is grpc.StatusCode.UNAVAILABLE and not reason:
        message = "the gateway backend is unavailable"
    return HttpError(status, message, field=field, retry_after=retry_after, headers=headers)


def from_domain_error(error: GatewayError) -> HttpError:
    """The HTTP error for a domain error met in the bridge itself (the same tables)."""
    status = REASON_TO_HTTP.get(error.reason, GRPC_TO_HTTP.get(error.code, 500))
    retry_after = max(1, math.ceil(error.retry_after_s)) \
        if error.retry_after_s is not None else None
    return HttpError(status, error.message, field=error.field, retry_after=retry_after)


def _details(metadata: Any) -> list[Any]:
    for key, value in metadata or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return list(status.details)
    return []
