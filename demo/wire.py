"""The provider side of CONTRACT §3 on aiohttp: answers, stream framing, serving.

Shared by the demo provider and the tests' scripted one (tests/support/provider.py). The
benchmark's mock (bench/mock_provider.py) builds its bytes once at import and is left alone:
it is the baseline every figure is measured against.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
from collections.abc import Callable, Mapping

import orjson
from aiohttp import web

__all__ = ["Encoder", "JSONObject", "error_response", "json_response", "loop_factory", "ndjson",
           "serve_until_signalled", "sse", "start", "stream_encoder"]

JSONObject = dict[str, object]
Encoder = Callable[[JSONObject], bytes]
NDJSON = "application/x-ndjson"
EVENT_STREAM = "text/event-stream"


def json_response(body: object, *, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def error_response(status: int, message: str,
                   headers: Mapping[str, str] | None = None) -> web.Response:
    """The contract's error envelope, ``{"error": {"message", "code"}}``."""
    return json_response({"error": {"message": message, "code": status}}, status=status,
                         headers=headers)


def ndjson(obj: JSONObject) -> bytes:
    return orjson.dumps(obj) + b"\n"


def sse(obj: JSONObject) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def stream_encoder(accept: str) -> tuple[str, Encoder]:
    """SSE when ``Accept`` asks for ``text/event-stream``, else NDJSON: (content type, encoder)."""
    if EVENT_STREAM in accept:
        return EVENT_STREAM, sse
    return NDJSON, ndjson


async def start(app: web.Application, *, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on the running loop; port 0 picks a free port, returned second."""
    # handler_cancellation: when the caller hangs up, stop working (or sleeping) for it.
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port: int = runner.addresses[0][1]
    return runner, bound_port


async def serve_until_signalled(app: web.Application, *, host: str, port: int,
                                announce: Callable[[int], None]) -> None:
    """Serve until SIGINT or SIGTERM; ``announce`` is told the port once it is bound."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner, bound_port = await start(app, host=host, port=port)
    try:
        announce(bound_port)
        await stop.wait()
    finally:
        await runner.cleanup()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's when it is installed (faster); the standard loop otherwise."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
