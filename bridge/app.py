"""The aiohttp application: middleware, operations endpoints, and its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from aiohttp import web
from grpc import aio
from grpc_health.v1 import health_pb2
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ai1net.bridge.backend import BACKEND, REQUEST_ID, Backend
from ai1net.bridge.console import add_console
from ai1net.bridge.errors import (
    HttpError,
    Render,
    envelope,
    error_response,
    from_rpc_error,
    new_request_id,
    openai_envelope,
)
from ai1net.bridge.links import FETCHER
from ai1net.bridge.openai import OPENAI_PREFIX, add_openai_routes
from ai1net.bridge.openapi import documented_methods, openapi_document
from ai1net.bridge.routes import add_routes, json_response
from ai1net.common.tracecontext import ContinuedTrace
from ai1net.server.transport import HttpTransport, Transport

log = logging.getLogger(__name__)

METRICS = web.AppKey("metrics", CollectorRegistry)
CONTINUE_TRACES = web.AppKey("continue_traces", bool)
# Set when the process starts to stop: /readyz answers 503 while calls are still served.
DRAINING = web.AppKey("draining", asyncio.Event)
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def envelope_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure, ours or aiohttp's, answers in the JSON envelope with its request id.

    With ``continue_traces`` (no spans exported, so no server instrumentation), a caller's
    traceparent becomes the current context: the trace id reaches the provider.
    """
    given = request.headers.get("x-request-id", "")
    request_id = given if given and SAFE_REQUEST_ID.fullmatch(given) else new_request_id()
    request[REQUEST_ID] = request_id
    try:
        if request.app[CONTINUE_TRACES]:
            with ContinuedTrace(request.headers):
                response = await handler(request)
        else:
            response = await handler(request)
    except HttpError as error:
        return error_response(error, request_id, _shape(request))
    except aio.AioRpcError as error:
        return error_response(from_rpc_error(error), request_id, _shape(request))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return error_response(_http_exception(error, request), request_id, _shape(request))
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(HttpError(500, "internal error"), request_id, _shape(request))
    if not response.prepared:
        response.headers["x-request-id"] = request_id
    return response


def _shape(request: web.Request) -> Render:
    """OpenAI's error shape under its prefix (its SDKs parse it), AI1NET's elsewhere."""
    return openai_envelope if request.path.startswith(OPENAI_PREFIX) else envelope


def _http_exception(error: web.HTTPException, request: web.Request) -> HttpError:
    if error.status == 404:
        return HttpError(404, f"no such path: {request.path}")
    if error.status == 405:
        # The document's methods for the path: aiohttp would also count those of a
        # template that matches it (/v1/keys/{id} for /v1/keys/me).
        allow = documented_methods(request.path) or error.headers.get("Allow", "")
        return HttpError(405, f"method {request.method} is not allowed on {request.path}",
                         headers={"Allow": allow} if allow else None)
    if error.status == 413:
        limit = request.app._client_max_size
        return HttpError(413, f"body is larger than the limit of {limit} bytes")
    return HttpError(error.status, error.reason or "request failed")


async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    if request.app[DRAINING].is_set():
        raise HttpError(503, "shutting down")
    try:
        answer = await request.app[BACKEND].health.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=3)
    except (TimeoutError, aio.AioRpcError) as exc:
        raise HttpError(503, "the gRPC backend does not answer") from exc
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        raise HttpError(503, "the database does not answer")
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(_request: web.Request) -> web.Response:
    return json_response(openapi_document())


def build_app(*, target: str | None = None, backend: Backend | None = None,
              max_body_bytes: int = 1024 * 1024,
              metrics_registry: CollectorRegistry | None = None,
              continue_traces: bool = False,
              credentials: grpc.ChannelCredentials | None = None,
              transport: Transport | None = None,
              allow_private_endpoints: bool = False) -> web.Application:
    """The bridge: a client of the gRPC server at ``target``, or of an in-process backend.

    Links it fetches (speech from an ``audio_url``) go through ``transport``, the gateway's
    beside it; without one, the bridge's own (its SSRF guard on unless
    ``allow_private_endpoints``)."""
    if (target is None) == (backend is None):
        raise ValueError("give the bridge either a gRPC target or an in-process backend")
    app = web.Application(client_max_size=max_body_bytes, middlewares=[envelope_middleware])
    app[METRICS] = metrics_registry or CollectorRegistry()
    app[CONTINUE_TRACES] = continue_traces
    app[DRAINING] = asyncio.Event()

    async def backend_ctx(app: web.Application) -> AsyncIterator[None]:
        app[BACKEND] = backend or Backend.connect(target or "", credentials)
        yield
        await app[BACKEND].close()

    async def fetcher_ctx(app: web.Application) -> AsyncIterator[None]:
        app[FETCHER] = transport or HttpTransport(allow_private=allow_private_endpoints)
        yield
        if transport is None:
            await app[FETCHER].close()

    app.cleanup_ctx.append(backend_ctx)
    app.cleanup_ctx.append(fetcher_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    add_routes(app)
    add_openai_routes(app)
    add_console(app)
    return app
