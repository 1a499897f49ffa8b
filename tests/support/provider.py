"""Scripted provider for the gateway's integration tests, run as a real separate process.

    python -m tests.support.provider --port 0    # prints "PORT <n>" once bound, serves until killed

Every behaviour is chosen by the URL path, so a test registers a model whose endpoint is, say,
``http://127.0.0.1:<port>/status/500``. POST routes take the CONTRACT §3 body and every one is
recorded as a ``request`` event (with its headers and parsed body).

    POST /ok                 {"output": "ok: <input>", "usage": {"input_tokens": 3,
                             "output_tokens": 5}, "latency_ms": 1}; with ?finish=R, also
                             "finish_reason": R (so do /stream/ndjson and /stream/sse's done)
    POST /echo               output "echo", plus "received": {"headers": {lower-cased: value},
                             "body": <parsed body>}
    POST /fractional         like /ok, usage {"input_tokens": 2.2, "output_tokens": 3.01}
    POST /nousage            {"output": "twelve chars"}, no usage
    POST /image              output {"image_url": "https://img.example/1.png"}, with usage
    POST /audio              output {"audio_url": "https://audio.example/1.wav"}, with usage
    POST /audio/linked?to=URL  output {"audio_url": URL} (default: this server's /audio-file)
    POST /status/{code}      that status, {"error": {"message": "scripted failure <code>",
                             "code": <code>}}; 429 carries Retry-After: 7
    POST /badjson            200 with the body ``not json``
    POST /slow/{ms}          sleeps, then like /ok; a client hang-up meanwhile records "disconnect"
    POST /auth/{secret}      401 envelope unless Authorization: Bearer <secret> or
                             x-api-key: <secret>, then like /ok
    POST /stream/ndjson?n=5&gap_ms=0   deltas "w0 ", "w1 ", ... then
                             {"done": true, "usage": {"input_tokens": 2, "output_tokens": n}}
    POST /stream/sse?n=5&gap_ms=0      the same as SSE ``data:`` events
    POST /stream/nousage?n=3&gap_ms=0  deltas, then {"done": true} without usage
    POST /stream/cut?n=3&gap_ms=0      n deltas, then the connection is dropped without done
    POST /stream/image       one {"output": {"image_url": ...}}, then done
    POST /openai/{mode}/v1/chat/completions   an OpenAI-compatible server (the "api": "openai"
                             provider side): mode ok answers a chat completion echoing the
                             model and the last message ("echo: <text>", finish_reason "stop",
                             usage 4/6), streamed as SSE chunks (role, two content deltas,
                             finish_reason, a usage chunk when stream_options.include_usage,
                             [DONE]) when "stream" is true; mode bad answers 400 and mode busy
                             429 (Retry-After: 7) in OpenAI's error shape; mode cut streams one
                             chunk and drops the connection without [DONE]; modes filtered
                             and long are ok with finish_reason content_filter and length
    GET  /health/{code}[/{tag}]  an empty JSON object with that status (a model's health_url;
                             the tag keeps a test's probes apart in the event log)
    GET  /audio-file?size=N  N bytes of audio (default 4096), Content-Type audio/wav
    GET  /_events[?path=P]   {"events": [{"kind": "request"|"disconnect", "path", "t", ...}]}
    DELETE /_events          forget them

/stream/* always stream, whatever the body says (nousage, cut and image in SSE when ``Accept``
asks for ``text/event-stream``, else NDJSON). The other routes ignore ``"stream"`` and answer
plain JSON: the contract's "provider that ignores stream" case. A stream whose client hangs up
records a ``disconnect`` event.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ai1net.demo.wire import (
    Encoder,
    JSONObject,
    error_response,
    json_response,
    ndjson,
    serve_until_signalled,
    sse,
    stream_encoder,
)

OK_USAGE = {"input_tokens": 3, "output_tokens": 5}
RETRY_AFTER_S = 7


@dataclass
class EventLog:
    events: list[JSONObject] = field(default_factory=list)

    def record(self, kind: str, path: str, **extra: object) -> None:
        self.events.append({"kind": kind, "path": path, "t": time.monotonic(), **extra})

    def select(self, path: str | None) -> list[JSONObject]:
        return [e for e in self.events if path is None or e["path"] == path]


EVENTS = web.AppKey("events", EventLog)
BODY = web.RequestKey("body", dict)


def _parse_body(raw: bytes) -> object:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


@web.middleware
async def record_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log every scripted call, and refuse bodies that break §3 so gateway bugs show up."""
    if request.path == "/_events":
        return await handler(request)
    body = _parse_body(await request.read())
    headers = {name.lower(): value for name, value in request.headers.items()}
    request.app[EVENTS].record("request", request.path, headers=headers, body=body)
    if request.method != "POST" or request.path.startswith("/openai/"):
        return await handler(request)  # aiohttp answers 404/405 for us
    if not isinstance(body, dict) or not isinstance(body.get("input"), str):
        return error_response(400, "scripted provider: body must be a JSON object with a string input")
    request[BODY] = body
    return await handler(request)


def _ok(request: web.Request, usage: object = OK_USAGE) -> web.Response:
    return json_response({"output": f"ok: {request[BODY]['input']}", "usage": usage, "latency_ms": 1,
                  **_finish(request)})


def _finish(request: web.Request) -> JSONObject:
    """``?finish=REASON``: the answer (or a stream's done) says why it stopped."""
    reason = request.query.get("finish")
    return {"finish_reason": reason} if reason else {}


async def ok(request: web.Request) -> web.Response:
    return _ok(request)


async def echo(request: web.Request) -> web.Response:
    headers = {name.lower(): value for name, value in request.headers.items()}
    received = {"headers": headers, "body": request[BODY]}
    return json_response({"output": "echo", "usage": OK_USAGE, "latency_ms": 1, "received": received})


async def fractional(request: web.Request) -> web.Response:
    return _ok(request, {"input_tokens": 2.2, "output_tokens": 3.01})


async def nousage(request: web.Request) -> web.Response:
    return json_response({"output": "twelve chars"})


async def image(request: web.Request) -> web.Response:
    output = {"image_url": "https://img.example/1.png"}
    return json_response({"output": output, "usage": {"input_tokens": 3, "output_tokens": 1}})


async def audio(request: web.Request) -> web.Response:
    output = {"audio_url": "https://audio.example/1.wav"}
    return json_response({"output": output, "usage": {"input_tokens": 3, "output_tokens": 1}})


async def audio_linked(request: web.Request) -> web.Response:
    url = request.query.get("to") or f"http://{request.host}/audio-file"
    return json_response({"output": {"audio_url": url}, "usage": {"input_tokens": 3, "output_tokens": 1}})


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    headers = {"Retry-After": str(RETRY_AFTER_S)} if code == 429 else None
    return error_response(code, f"scripted failure {code}", headers)


async def badjson(request: web.Request) -> web.Response:
    # Labelled JSON on purpose: the gateway must not trust Content-Type.
    return web.Response(body=b"not json", content_type="application/json")


async def slow(request: web.Request) -> web.Response:
    try:
        await asyncio.sleep(int(request.match_info["ms"]) / 1000)
    except asyncio.CancelledError:
        # aiohttp cancels the handler when the client hangs up (handler_cancellation=True).
        request.app[EVENTS].record("disconnect", request.path)
        raise
    return _ok(request)


async def auth(request: web.Request) -> web.Response:
    secret = request.match_info["secret"]
    presented = {request.headers.get("Authorization"), request.headers.get("x-api-key")}
    if f"Bearer {secret}" not in presented and secret not in presented:
        return error_response(401, "scripted provider: wrong credential")
    return _ok(request)


# --- streams --------------------------------------------------------------------------------


def _negotiated(request: web.Request) -> Encoder:
    return stream_encoder(request.headers.get("Accept", ""))[1]


def _query_int(request: web.Request, name: str, default: int) -> int:
    return int(request.query.get(name, default))


def _deltas(request: web.Request, default_n: int) -> list[JSONObject]:
    return [{"delta": f"w{i} "} for i in range(_query_int(request, "n", default_n))]


async def _stream(
    request: web.Request, encode: Encoder, chunks: list[JSONObject], *, cut: bool = False
) -> web.StreamResponse:
    """Send chunks with ?gap_ms between them; `cut` drops the connection instead of ending."""
    content_type = "text/event-stream" if encode is sse else "application/x-ndjson"
    response = web.StreamResponse(headers={"Content-Type": content_type})
    gap_s = _query_int(request, "gap_ms", 0) / 1000
    try:
        await response.prepare(request)
        for index, chunk in enumerate(chunks):
            if index and gap_s:
                await asyncio.sleep(gap_s)
            await response.write(encode(chunk))
    except asyncio.CancelledError:  # hung up while we slept (handler_cancellation=True)
        request.app[EVENTS].record("disconnect", request.path)
        raise
    except ConnectionResetError:  # hung up under a write; nobody is left to answer
        request.app[EVENTS].record("disconnect", request.path)
        return response
    if cut and request.transport is not None:
        # Flushes what was written, then closes with no final chunk: a truncated body.
        request.transport.close()
    return response


def _done(n: int) -> JSONObject:
    return {"done": True, "usage": {"input_tokens": 2, "output_tokens": n}}


async def stream_ndjson(request: web.Request) -> web.StreamResponse:
    deltas = _deltas(request, 5)
    return await _stream(request, ndjson, [*deltas, {**_done(len(deltas)), **_finish(request)}])


async def stream_sse(request: web.Request) -> web.StreamResponse:
    deltas = _deltas(request, 5)
    return await _stream(request, sse, [*deltas, {**_done(len(deltas)), **_finish(request)}])


async def stream_nousage(request: web.Request) -> web.StreamResponse:
    return await _stream(request, _negotiated(request), [*_deltas(request, 3), {"done": True}])


async def stream_cut(request: web.Request) -> web.StreamResponse:
    return await _stream(request, _negotiated(request), _deltas(request, 3), cut=True)


async def stream_image(request: web.Request) -> web.StreamResponse:
    output: JSONObject = {"output": {"image_url": "https://img.example/1.png"}}
    return await _stream(request, _negotiated(request), [output, _done(1)])


# --- an OpenAI-compatible server ------------------------------------------------------------


OPENAI_FINISH = {"filtered": "content_filter", "long": "length"}


def _openai_error(status: int, message: str, headers: dict[str, str] | None = None,
                  ) -> web.Response:
    error = {"message": message, "type": "invalid_request_error" if status == 400
             else "rate_limit_exceeded", "param": None, "code": None}
    return json_response({"error": error}, status=status, headers=headers)


async def openai_chat(request: web.Request) -> web.StreamResponse:
    mode = request.match_info["mode"]
    body = _parse_body(await request.read())
    if mode == "bad":
        return _openai_error(400, "scripted OpenAI server: temperature is out of range")
    if mode == "busy":
        return _openai_error(429, "scripted OpenAI server: slow down",
                             {"Retry-After": str(RETRY_AFTER_S)})
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) \
            or not isinstance(body.get("messages"), list) or not body["messages"]:
        return _openai_error(400, "scripted OpenAI server: model and messages are required")
    text = f"echo: {body['messages'][-1].get('content')}"
    finish = OPENAI_FINISH.get(mode, "stop")
    base = {"id": "chatcmpl-test", "created": 1, "model": body["model"]}
    usage = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
    if not body.get("stream"):
        return json_response({**base, "object": "chat.completion", "usage": usage, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text},
             "finish_reason": finish}]})
    chunk = {**base, "object": "chat.completion.chunk"}

    def delta(content: JSONObject, finish: str | None = None) -> JSONObject:
        return {**chunk, "choices": [{"index": 0, "delta": content, "finish_reason": finish}]}

    chunks = [delta({"role": "assistant"}), delta({"content": text[:5]}),
              delta({"content": text[5:]}), delta({}, finish)]
    if mode == "cut":
        return await _stream(request, sse, chunks[:2], cut=True)
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**chunk, "choices": [], "usage": usage})
    response = await _stream(request, sse, chunks)
    await response.write(b"data: [DONE]\n\n")
    return response


# --- GETs: health checks and audio links ----------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return json_response({}, status=int(request.match_info["code"]))


AUDIO_BYTES = b"RIFF" + bytes(range(256)) * 16


async def audio_file(request: web.Request) -> web.Response:
    size = int(request.query.get("size", str(len(AUDIO_BYTES))))
    return web.Response(body=(AUDIO_BYTES * (size // len(AUDIO_BYTES) + 1))[:size],
                        content_type="audio/wav")


# --- event log ------------------------------------------------------------------------------


async def get_events(request: web.Request) -> web.Response:
    return json_response({"events": request.app[EVENTS].select(request.query.get("path"))})


async def clear_events(request: web.Request) -> web.Response:
    request.app[EVENTS].events.clear()
    return json_response({"events": []})


def build_app() -> web.Application:
    app = web.Application(middlewares=[record_requests])
    app[EVENTS] = EventLog()
    for path, handler in [
        ("/ok", ok),
        ("/echo", echo),
        ("/fractional", fractional),
        ("/nousage", nousage),
        ("/image", image),
        ("/audio", audio),
        ("/audio/linked", audio_linked),
        (r"/status/{code:\d{3}}", status),
        ("/badjson", badjson),
        (r"/slow/{ms:\d+}", slow),
        ("/auth/{secret}", auth),
        ("/stream/ndjson", stream_ndjson),
        ("/stream/sse", stream_sse),
        ("/stream/nousage", stream_nousage),
        ("/stream/cut", stream_cut),
        ("/stream/image", stream_image),
        ("/openai/{mode}/v1/chat/completions", openai_chat),
    ]:
        app.router.add_post(path, handler)
    app.router.add_get(r"/health/{code:\d{3}}", health)
    app.router.add_get(r"/health/{code:\d{3}}/{tag}", health)
    app.router.add_get("/audio-file", audio_file)
    app.router.add_get("/_events", get_events)
    app.router.add_delete("/_events", clear_events)
    return app


async def serve(host: str, port: int) -> None:
    await serve_until_signalled(build_app(), host=host, port=port,
                                announce=lambda bound: print(f"PORT {bound}", flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scripted provider for integration tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
