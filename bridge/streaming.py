"""Streaming generate over HTTP: NDJSON by default, SSE on ``Accept: text/event-stream``
(or OpenAI's chunks, ``openai_wire.ChunkFraming``: one relay, a framing per wire format).

The first message is awaited before any byte is sent, so a failure before it is a real
HTTP status with the envelope; a failure after it ends the body with ``{"error": ...}``
(never a ``done``). Each message is written as it arrives; closing the connection
cancels the gRPC call, which cancels the provider call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from aiohttp import web
from grpc import aio

from ai1net.bridge.backend import REQUEST_ID
from ai1net.bridge.errors import HttpError, envelope, from_rpc_error
from ai1net.bridge.translate import usage_json
from ai1net.client.convert import value_to_python
from ai1net.v1 import generate_pb2

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
# grpc-stubs does not declare grpc.aio.EOF, the sentinel ``read()`` returns at stream end.
EOF: object = aio.EOF  # type: ignore[attr-defined]


def event_json(message: generate_pb2.GenerateStreamResponse) -> dict[str, Any]:
    if message.done:
        done = {"done": True, "id": message.id, "model": message.model,
                "usage": usage_json(message.usage), "latency_ms": message.latency_ms,
                "cost_usd": message.cost_usd, "ttft_ms": message.ttft_ms}
        if message.finish_reason:
            done["finish_reason"] = message.finish_reason
        return done
    if message.HasField("delta"):
        return {"delta": message.delta}
    return {"output": value_to_python(message.output)}


def frame(data: dict[str, Any], *, sse: bool) -> bytes:
    body = orjson.dumps(data)
    return b"data: " + body + b"\n\n" if sse else body + b"\n"


class Framing(Protocol):
    """How a stream's messages go on the wire: AI1NET's events, or OpenAI's chunks."""

    @property
    def content_type(self) -> str: ...

    def opening(self, metadata: dict[str, str]) -> bytes:
        """Bytes before the first message, given the call's ``x-ai1net-*`` metadata."""

    def message(self, message: generate_pb2.GenerateStreamResponse) -> bytes: ...

    def failure(self, error: HttpError, request_id: str) -> bytes: ...

    def closing(self) -> bytes:
        """Bytes after the last message of a stream that succeeded."""


@dataclass(frozen=True, slots=True)
class NativeFraming:
    """CONTRACT §2.1: NDJSON lines, or the same objects as SSE ``data:`` events."""

    sse: bool

    @property
    def content_type(self) -> str:
        return SSE if self.sse else NDJSON

    def opening(self, metadata: dict[str, str]) -> bytes:
        return b""

    def message(self, message: generate_pb2.GenerateStreamResponse) -> bytes:
        return frame(event_json(message), sse=self.sse)

    def failure(self, error: HttpError, request_id: str) -> bytes:
        return frame(envelope(error, request_id), sse=self.sse)

    def closing(self) -> bytes:
        return b""


def native_framing(request: web.Request) -> NativeFraming:
    return NativeFraming(sse=SSE in request.headers.get("Accept", ""))


async def relay(request: web.Request, call: Any, framing: Framing) -> web.StreamResponse:
    """Answer ``request`` with the messages of a GenerateStream ``call``. A caller that hangs
    up mid-stream ends it: the call is cancelled (and billed for what was delivered), and
    the response is handed back to aiohttp, whose own end of it expects a connection gone
    (a ``ConnectionError`` from a write is not the gateway's error, nor logged as one)."""
    finished = False
    try:
        first = await call.read()
        if first is EOF:
            raise HttpError(502, "the stream ended before it started")
        response, metadata = await _response(call, request[REQUEST_ID], framing.content_type)
        try:
            await response.prepare(request)
            try:
                await response.write(framing.opening(metadata) + framing.message(first))
                while (message := await call.read()) is not EOF:
                    await response.write(framing.message(message))
                tail = framing.closing()
            except aio.AioRpcError as error:
                tail = framing.failure(from_rpc_error(error), request[REQUEST_ID])
            finished = True
            await response.write_eof(tail)
        except ConnectionError:
            log.debug("the caller of %s hung up mid-stream", request[REQUEST_ID])
        return response
    finally:
        if not finished:
            call.cancel()


async def _response(call: Any, request_id: str,
                    content_type: str) -> tuple[web.StreamResponse, dict[str, str]]:
    """The stream's response, not yet prepared, and the call's ``x-ai1net-*`` metadata."""
    metadata = {key: value for key, value in await call.initial_metadata() or ()
                if key.startswith("x-ai1net-") and isinstance(value, str)}
    headers = {"Content-Type": content_type, "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no", "x-request-id": request_id, **metadata}
    return web.StreamResponse(headers=headers), metadata
