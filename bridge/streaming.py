"""Streaming generate over HTTP: NDJSON by default, SSE on ``Accept: text/event-stream``.

The first message is awaited before any byte is sent, so a failure before it is a real
HTTP status with the envelope; a failure after it ends the body with ``{"error": ...}``
(never a ``done``). Each message is written as it arrives; closing the connection
cancels the gRPC call, which cancels the provider call.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from grpc import aio

from ai1net.bridge.backend import REQUEST_ID
from ai1net.bridge.errors import HttpError, envelope, from_rpc_error
from ai1net.bridge.translate import usage_json
from ai1net.client.convert import value_to_python
from ai1net.v1 import generate_pb2

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
# grpc-stubs does not declare grpc.aio.EOF, the sentinel ``read()`` returns at stream end.
EOF: object = aio.EOF  # type: ignore[attr-defined]


def event_json(message: generate_pb2.GenerateStreamResponse) -> dict[str, Any]:
    if message.done:
        return {"done": True, "id": message.id, "model": message.model,
                "usage": usage_json(message.usage), "latency_ms": message.latency_ms,
                "cost_usd": message.cost_usd, "ttft_ms": message.ttft_ms}
    if message.HasField("delta"):
        return {"delta": message.delta}
    return {"output": value_to_python(message.output)}


def frame(data: dict[str, Any], *, sse: bool) -> bytes:
    body = orjson.dumps(data)
    return b"data: " + body + b"\n\n" if sse else body + b"\n"


async def relay(request: web.Request, call: Any) -> web.StreamResponse:
    """Answer ``request`` with the messages of a GenerateStream ``call``."""
    sse = SSE in request.headers.get("Accept", "")
    finished = False
    try:
        first = await call.read()
        if first is EOF:
            raise HttpError(502, "the stream ended before it started")
        response = await _start(request, call, sse=sse)
        message = first
        try:
            while message is not EOF:
                await response.write(frame(event_json(message), sse=sse))
                message = await call.read()
        except aio.AioRpcError as error:
            failure = envelope(from_rpc_error(error), request[REQUEST_ID])
            await response.write(frame(failure, sse=sse))
        finished = True
        await response.write_eof()
        return response
    finally:
        if not finished:
            call.cancel()


async def _start(request: web.Request, call: Any, *, sse: bool) -> web.StreamResponse:
    headers = {"Content-Type": SSE if sse else NDJSON, "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no", "x-request-id": request[REQUEST_ID]}
    for key, value in await call.initial_metadata() or ():
        if key.startswith("x-ai1net-") and isinstance(value, str):
            headers[key] = value
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    return response


