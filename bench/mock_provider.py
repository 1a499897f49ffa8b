"""A minimal provider speaking CONTRACT §3, plus an OpenAI-style chat endpoint for the peer.

``POST /v1/generate`` answers one fixed JSON body, or with ``"stream": true`` a few NDJSON
deltas and a ``done`` line. ``POST /v1/chat/completions`` answers like OpenAI (non-streaming
and SSE). Bodies are built once; a request is parsed only when it may ask for streaming, so
the mock costs as little as an aiohttp handler can.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterable

import orjson
from aiohttp import web

OUTPUT = "Quantum computing uses qubits to explore many states at once."
DELTAS = ("Quantum", " computing", " uses", " qubits.")
USAGE = {"input_tokens": 2, "output_tokens": 8}

UNARY_BODY = orjson.dumps({"output": OUTPUT, "usage": USAGE, "latency_ms": 0})
DELTA_LINES = [orjson.dumps({"delta": d}) + b"\n" for d in DELTAS]
DONE_LINE = orjson.dumps({"done": True, "usage": USAGE}) + b"\n"

DELAY_KEY = web.AppKey("delay_s", float)


def wants_stream(body: bytes) -> bool:
    return b"stream" in body and bool(orjson.loads(body).get("stream"))


async def answer(request: web.Request, unary: Callable[[], bytes], stream_type: str,
                 chunks: Callable[[], Iterable[bytes]]) -> web.StreamResponse:
    """After the configured delay: one JSON body, or the chunks when the body asks to stream."""
    body = await request.read()
    delay = request.app[DELAY_KEY]
    if delay:
        await asyncio.sleep(delay)
    if not wants_stream(body):
        return web.Response(body=unary(), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": stream_type})
    await response.prepare(request)
    for chunk in chunks():
        await response.write(chunk)
    await response.write_eof()
    return response


async def generate(request: web.Request) -> web.StreamResponse:
    return await answer(request, lambda: UNARY_BODY, "application/x-ndjson",
                        lambda: (*DELTA_LINES, DONE_LINE))


def chat_completion() -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": int(time.time()),
        "model": "bench",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": OUTPUT}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 8, "total_tokens": 10},
    })


def chat_chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
             "created": int(time.time()), "model": "bench",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await answer(request, chat_completion, "text/event-stream", lambda: (
        *(chat_chunk(delta) for delta in DELTAS), chat_chunk(None, "stop"), b"data: [DONE]\n\n"))


async def models(_request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": "bench", "object": "model"}]})


def build_app(*, delay_ms: float = 0.0) -> web.Application:
    app = web.Application()
    app[DELAY_KEY] = delay_ms / 1000
    app.router.add_post("/v1/generate", generate)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3900)
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="wait this long before answering (a slower provider)")
    args = parser.parse_args(argv)
    import uvloop

    web.run_app(build_app(delay_ms=args.delay_ms), host=args.host, port=args.port,
                access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
