"""The guard around every method handler: authenticates the call, checks its role, and
turns domain errors into gRPC statuses with google.rpc.Status details.

It wraps each handler once, where the servicers are added (`AuthGuard.handlers`), rather
than running as a server interceptor: gRPC calls and the bridge's in-process calls go
through the same guarded handlers, and no interceptor coroutine runs per call (a no-op
grpc.aio interceptor alone costs about a tenth of a bare unary call).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

import grpc
from grpc import aio

from ai1net.common.tracecontext import ContinuedTrace
from ai1net.server import audit
from ai1net.server.errors import GatewayError, PermissionDenied, to_status
from ai1net.server.keys import KeyStore, Principal

log = logging.getLogger(__name__)

ANY = frozenset({"admin", "provider", "consumer"})
PROVIDERS = frozenset({"admin", "provider"})
ADMIN = frozenset({"admin"})

# Who may call what; ownership is checked by the domain, which knows the owners.
METHOD_ROLES: dict[str, frozenset[str]] = {
    "/ai1net.v1.GenerateService/Generate": ANY,
    "/ai1net.v1.GenerateService/GenerateStream": ANY,
    "/ai1net.v1.RegistryService/RegisterModel": PROVIDERS,
    "/ai1net.v1.RegistryService/GetModel": ANY,
    "/ai1net.v1.RegistryService/ListModels": ANY,
    "/ai1net.v1.RegistryService/UpdateModel": PROVIDERS,
    "/ai1net.v1.RegistryService/DeleteModel": PROVIDERS,
    "/ai1net.v1.RegistryService/CheckModel": PROVIDERS,
    "/ai1net.v1.UsageService/GetUsage": ANY,
    "/ai1net.v1.UsageService/ReportUsage": PROVIDERS,
    "/ai1net.v1.UsageService/GetReconciliation": PROVIDERS,
    "/ai1net.v1.UsageService/GetStatement": PROVIDERS,
    "/ai1net.v1.UsageService/SubmitFeedback": ANY,  # whose generation: FeedbackBoard.rate
    "/ai1net.v1.KeyService/CreateKey": ADMIN,
    "/ai1net.v1.KeyService/ListKeys": ADMIN,
    "/ai1net.v1.KeyService/UpdateKey": ADMIN,
    "/ai1net.v1.KeyService/RevokeKey": ADMIN,
    "/ai1net.v1.KeyService/GetCurrentKey": ANY,
    "/ai1net.v1.AuditService/ListAuditEvents": ADMIN,
}
GUARDED_PACKAGE = "/ai1net."  # every method of these services must be in METHOD_ROLES

_principal: ContextVar[Principal] = ContextVar("ai1net_principal")
_request_id: ContextVar[str] = ContextVar("ai1net_request_id", default="")
TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})


def current_principal() -> Principal:
    """The caller of the RPC being served (set by the guard before the servicer runs)."""
    return _principal.get()


def require_role(*roles: str) -> Principal:
    """The caller, if its role is one of ``roles``: servicers check again what the guard's
    table says (defence in depth: a table entry widened by mistake opens nothing)."""
    principal = current_principal()
    if principal.role not in roles:
        raise PermissionDenied(f"this call needs one of the roles: {', '.join(sorted(roles))}")
    return principal


def current_request_id() -> str:
    """The ``x-request-id`` the RPC being served came with (at most 64 characters)."""
    return _request_id.get()


def presented_key(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The key from ``authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == "x-api-key" and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _trace_carrier(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    return {k: v for k, v in metadata or () if k in TRACE_HEADERS and isinstance(v, str)}


def _request_id_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    for name, value in metadata or ():
        if name == "x-request-id" and isinstance(value, str):
            return value[:64]
    return ""


async def abort(context: aio.ServicerContext[Any, Any], error: GatewayError) -> None:
    code, message, trailer = to_status(error)
    await context.abort(code, message, trailer)


class AuthGuard:
    def __init__(self, *, keys: KeyStore, continue_traces: bool = False) -> None:
        self._keys = keys
        # Without the OpenTelemetry server interceptor, take the caller's traceparent here.
        self._continue_traces = continue_traces

    def handlers(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]],
                 ) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
        """A service's method handlers (by method name), each behind the guard."""
        return {name: self.handler(f"/{service}/{name}", handler)
                for name, handler in handlers.items()}

    def handler(self, method: str, handler: grpc.RpcMethodHandler[Any, Any],
                ) -> grpc.RpcMethodHandler[Any, Any]:
        roles = METHOD_ROLES.get(method)
        if roles is None:
            if method.startswith(GUARDED_PACKAGE):  # fail closed: a new method needs roles
                raise RuntimeError(f"{method} has no entry in METHOD_ROLES")
            return handler  # health: open to all, as load balancers expect
        # Streaming servicers write with context.write, so both kinds wrap a coroutine.
        make = grpc.unary_unary_rpc_method_handler if handler.unary_unary is not None \
            else grpc.unary_stream_rpc_method_handler
        return make(self._guard(handler.unary_unary or handler.unary_stream, roles),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)

    async def _admit(self, metadata: Iterable[tuple[str, str | bytes]] | None,
                     roles: frozenset[str]) -> Principal:
        principal = await self._keys.authenticate_fresh(presented_key(metadata))
        if principal.role not in roles:
            raise PermissionDenied(f"this call needs one of the roles: {', '.join(sorted(roles))}")
        return principal

    def _guard(self, behavior: Any, roles: frozenset[str]) -> Any:
        """``behavior`` behind the key check, with domain errors turned into statuses."""
        async def serve(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            # Read once: grpc.aio builds the tuple anew at every call of the method.
            metadata = context.invocation_metadata()
            carrier = _trace_carrier(metadata) if self._continue_traces else {}
            request_id = _request_id_of(metadata)
            _request_id.set(request_id)
            try:
                principal = await self._admit(metadata, roles)
                _principal.set(principal)
                audit.acting(audit.Actor(principal.id, request_id))
                with ContinuedTrace(carrier):
                    return await behavior(request, context)
            except GatewayError as error:
                await abort(context, error)
            except (aio.AbortError, grpc.RpcError):
                raise
            except Exception:
                log.exception("unexpected error in %s", getattr(behavior, "__name__", "?"))
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        return serve
