"""The maintained OpenTelemetry instrumentations, set up for AI1NET (used when spans are
exported: ``TraceMode.FULL``).

Imported only where spans are exported (``build_gateway``, ``serve``): importing the
instrumentations costs a good part of a second of start-up, which a gateway exporting no
spans does not pay. Only their public APIs are used.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_otel_version
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

# Health checks and reflection would only add noise to the traces.
UNTRACED_GRPC_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection",
                          "grpc.reflection.v1.ServerReflection")


class _WrittenStreams(aio.ServerInterceptor):  # type: ignore[type-arg]
    """The maintained server interceptor, for streaming handlers that answer with
    ``context.write`` (a coroutine, not an async generator): upstream wraps every streaming
    behavior in ``async for`` and fails them (opentelemetry-python-contrib issue 3066).

    Such a handler is shown to it as the unary handler it behaves like, and the traced
    behavior it hands back is served as the stream it is. Public APIs only: the
    interceptor's ``intercept_service`` and grpc's handler constructors.
    """

    def __init__(self, traced: aio.ServerInterceptor) -> None:  # type: ignore[type-arg]
        self._traced = traced

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Any],
            handler_call_details: grpc.HandlerCallDetails) -> Any:
        written: list[Any] = []

        async def shown(details: grpc.HandlerCallDetails) -> Any:
            handler = await continuation(details)
            if handler is None or not handler.response_streaming \
                    or handler.request_streaming \
                    or inspect.isasyncgenfunction(handler.unary_stream):
                return handler
            written.append(handler)
            return grpc.unary_unary_rpc_method_handler(
                handler.unary_stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)

        traced = await self._traced.intercept_service(shown, handler_call_details)
        if not written:
            return traced
        behavior = traced.unary_unary
        assert behavior is not None  # the unary handler it was shown, traced
        return grpc.unary_stream_rpc_method_handler(
            behavior, request_deserializer=written[0].request_deserializer,
            response_serializer=written[0].response_serializer)


def grpc_server_interceptor() -> aio.ServerInterceptor[Any, Any]:
    """Server spans continuing the caller's ``traceparent``; put it first in
    ``aio.server(interceptors=[...])`` so that everything after it is inside the span."""
    traced = aio_server_interceptor(filter_=_traced_grpc_method())  # type: ignore[no-untyped-call]
    return _WrittenStreams(traced)


def grpc_client_interceptors() -> list[aio.ClientInterceptor]:
    """Client spans that send ``traceparent``; pass them to
    ``aio.insecure_channel(target, interceptors=...)``."""
    interceptors = aio_client_interceptors(filter_=_traced_grpc_method())  # type: ignore[no-untyped-call]
    return list(interceptors)


def _traced_grpc_method() -> Callable[[Any], bool]:
    untraced = (filters.service_name(each) for each in UNTRACED_GRPC_SERVICES)
    return filters.negate(filters.any_of(*untraced))


def instrument() -> None:
    """Trace aiohttp applications (the bridge); provider calls make their own client spans
    (``telemetry.ProviderSpan``).

    Patches aiohttp, so call it before the applications are made. Idempotent.
    The instrumentations use the global provider, so the order relative to `setup_tracing`
    does not matter. gRPC is traced by the interceptors above, passed where the server and
    the channel are made.
    """
    server = AioHttpServerInstrumentor()
    if not server.is_instrumented_by_opentelemetry:
        with warnings.catch_warnings():
            # It patches in a subclass of web.Application, which aiohttp discourages.
            warnings.filterwarnings("ignore", "Inheritance class _InstrumentedApplication",
                                    DeprecationWarning)
            server.instrument()


def instrument_engine(engine: AsyncEngine | Engine) -> None:
    """Trace one engine's statements; call once per engine.

    The instrumentor's own patching of ``create_async_engine`` misses a name imported before
    it ran, so the engine is instrumented directly. Its package declares SQLAlchemy < 2.1,
    but the event hooks it uses are unchanged in 2.1 (tests/unit/test_telemetry.py).
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", sqlalchemy_otel_version)
    usage = metrics.get_meter("opentelemetry.instrumentation.sqlalchemy").create_up_down_counter(
        "db.client.connections.usage", unit="connections")
    EngineTracer(tracer, sync_engine, usage)  # type: ignore[no-untyped-call]

