"""The maintained OpenTelemetry instrumentations, set up for AI1NET.

Kept apart from ``telemetry`` because importing them costs a good part of a second of
start-up, which a gateway exporting no spans does not pay (see ``telemetry``'s wrappers).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from grpc import aio
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.instrumentation.grpc import aio_client_interceptors, filters
from opentelemetry.instrumentation.grpc._aio_server import OpenTelemetryAioServerInterceptor
from opentelemetry.instrumentation.grpc.version import __version__ as grpc_otel_version
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_otel_version
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from ai1net.server.telemetry import GRPC_INSTRUMENTATION, UNTRACED_GRPC_SERVICES


class _GrpcServerInterceptor(OpenTelemetryAioServerInterceptor):
    """The maintained interceptor, fixed for streaming handlers that answer with
    ``context.write`` (a coroutine, not an async generator): upstream wraps every streaming
    behavior in ``async for`` and fails them (opentelemetry-python-contrib issue 3066)."""

    def _intercept_aio_server_stream(self, behavior: Any, handler_call_details: Any) -> Any:
        if inspect.isasyncgenfunction(behavior):
            return super()._intercept_aio_server_stream(  # type: ignore[no-untyped-call]
                behavior, handler_call_details)
        return self._intercept_aio_server_unary(  # type: ignore[no-untyped-call]
            behavior, handler_call_details)


def grpc_server_interceptor() -> aio.ServerInterceptor[Any, Any]:
    """Server spans continuing the caller's ``traceparent``; put it first in
    ``aio.server(interceptors=[...])`` so that everything after it is inside the span."""
    tracer = trace.get_tracer(GRPC_INSTRUMENTATION, grpc_otel_version)
    return _GrpcServerInterceptor(tracer, filter_=_traced_grpc_method())  # type: ignore[no-untyped-call]


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
    (``telemetry.provider_span``).

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

