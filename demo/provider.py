"""The bundled demo AI provider: speaks the provider contract (CONTRACT §3).

The Python twin of the seed's Node.js example provider. Its answers are built from the input
alone, so demos, docs and tests get the same reply to the same question.

Routes::

    POST /v1/generate        text   {"output": "...", "usage": {...}, "latency_ms": n}
    POST /image/v1/generate  image  {"output": {"image_url": "data:image/svg+xml;base64,..."}, ...}
    POST /audio/v1/generate  audio  {"output": {"audio_url": "data:audio/wav;base64,..."}, ...}
    GET  /healthz                   {"status": "ok"}

Query-string knobs on the endpoint URL a model is registered with, for routing and resilience
demos (``/v1/generate?delay_ms=300&fail_rate=0.5``): ``delay_ms`` sleeps before answering,
``fail_rate`` (0..1) answers 503 that often, ``status`` always answers that error status (429
carries ``Retry-After: 2``). With ``"stream": true`` the answer is NDJSON, or SSE when the
``Accept`` header asks for ``text/event-stream``.

Every failure is a ``DemoError``, turned into the contract's ``{"error": {"message", "code"}}``
envelope by the one middleware, ``error_envelope``. Run it with ``ai1net demo-provider`` or
``python -m ai1net.demo.provider``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import io
import math
import os
import random
import re
import struct
import sys
import time
import wave
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from ai1net.demo import wire
from ai1net.demo.wire import JSONObject, error_response, json_response, stream_encoder

RETRY_AFTER_S = 2
DEFAULT_SIZE = (256, 256)
MAX_SIDE = 2048
MAX_DELAY_MS = 600_000  # finite: "inf" would park the caller forever
AUDIO_RATE_HZ = 8000
AUDIO_SECONDS = 0.25
IMAGE_OUTPUT_TOKENS = 1
AUDIO_OUTPUT_TOKENS = 3  # a plausible figure: ten a second of audio, rounded up

_FOLLOW_UPS = (
    "The key idea is to start from what you already know and add one new piece at a time.",
    "Most of it comes down to a few simple rules applied over and over again.",
    "A good first step is to work through one small, concrete example before the general case.",
    "An everyday analogy usually makes it click, and that works well here too.",
)
_CLOSERS = (
    "This reply comes from the AI1NET demo provider, so it is the same every time you ask.",
    "Ask a follow-up question to go one level deeper.",
    "That is the short version; the long one fills a book.",
)


class DemoError(Exception):
    """A failure answered with the contract's error envelope."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class DemoConfig:
    api_key: str | None
    stream_delay_s: float
    rng: random.Random


@dataclass(frozen=True)
class GenerateRequest:
    input: str
    parameters: JSONObject
    stream: bool


@dataclass(frozen=True)
class Knobs:
    delay_s: float = 0.0
    fail_rate: float = 0.0
    status: int | None = None


@dataclass(frozen=True)
class Reply:
    """One generation, both as the unary `output` and as the chunks a stream sends before done."""

    output: str | dict[str, str]
    chunks: list[JSONObject]
    usage: dict[str, int]


Renderer = Callable[[GenerateRequest], Reply]
CONFIG = web.AppKey("demo_config", DemoConfig)


# --- parsing ------------------------------------------------------------------------------


def parse_request(raw: bytes) -> GenerateRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DemoError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise DemoError(400, "request body must be a JSON object")
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        raise DemoError(400, "input must be a non-empty string")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise DemoError(400, "parameters must be an object")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise DemoError(400, "stream must be a boolean")
    return GenerateRequest(input=text, parameters=parameters, stream=stream)


def max_tokens(parameters: Mapping[str, object]) -> int | None:
    value = parameters.get("max_tokens")
    if value is None:
        return None
    # bool is an int subclass; `true` is not a token count.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DemoError(400, "parameters.max_tokens must be a positive integer")
    return value


def image_size(parameters: Mapping[str, object]) -> tuple[int, int]:
    value = parameters.get("size")
    if value is None:
        return DEFAULT_SIZE
    match = (
        re.fullmatch(r"(\d{1,4})x(\d{1,4})", value, re.ASCII) if isinstance(value, str) else None
    )
    if match is not None:
        width, height = int(match[1]), int(match[2])
        if 0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE:
            return width, height
    raise DemoError(400, f'parameters.size must be "WIDTHxHEIGHT" with sides 1..{MAX_SIDE}')


def parse_knobs(query: Mapping[str, str]) -> Knobs:
    return Knobs(
        delay_s=_query_number(query, "delay_ms", high=MAX_DELAY_MS) / 1000,
        fail_rate=_query_number(query, "fail_rate", high=1.0),
        status=_query_status(query),
    )


def _query_number(query: Mapping[str, str], name: str, *, high: float) -> float:
    raw = query.get(name)
    if raw is None:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= high:  # also rejects nan
        raise DemoError(400, f"query parameter {name} must be a number in [0, {high:g}]")
    return value


def _query_status(query: Mapping[str, str]) -> int | None:
    raw = query.get("status")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and 400 <= int(raw) <= 599):
        raise DemoError(400, "query parameter status must be an HTTP error status, 400..599")
    return int(raw)


def check_auth(headers: Mapping[str, str], api_key: str | None) -> None:
    if api_key is None:
        return
    expected = api_key.encode()
    # compare_digest on bytes: it refuses non-ASCII str, and a client may send anything.
    if not any(hmac.compare_digest(key.encode(), expected) for key in _presented_keys(headers)):
        raise DemoError(
            401, "missing or wrong API key: send Authorization: Bearer <key> or x-api-key"
        )


def _presented_keys(headers: Mapping[str, str]) -> list[str]:
    keys = []
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        keys.append(token.strip())
    if "x-api-key" in headers:
        keys.append(headers["x-api-key"])
    return keys


# --- misbehaviour on request ----------------------------------------------------------------


async def apply_knobs(knobs: Knobs, rng: random.Random) -> None:
    if knobs.delay_s:
        await asyncio.sleep(knobs.delay_s)
    if knobs.status is not None:
        retry_after = RETRY_AFTER_S if knobs.status == 429 else None
        raise DemoError(
            knobs.status, f"demo provider told to answer {knobs.status}", retry_after=retry_after
        )
    if knobs.fail_rate and rng.random() < knobs.fail_rate:
        raise DemoError(503, f"demo provider failed on purpose (fail_rate={knobs.fail_rate:g})")


# --- generation -----------------------------------------------------------------------------


def _digest(prompt: str) -> bytes:
    # sha256, not hash(): str hashes are salted per process and the demo must be reproducible.
    return hashlib.sha256(prompt.encode()).digest()


def _topic(prompt: str, max_words: int) -> str:
    words = prompt.split()
    topic = " ".join(words[:max_words]).rstrip(".?!,;:")
    return topic + ("..." if len(words) > max_words else "")


def _usage(prompt: str, output_tokens: int) -> dict[str, int]:
    return {"input_tokens": math.ceil(len(prompt) / 4), "output_tokens": output_tokens}


def compose_words(prompt: str, limit: int | None) -> list[str]:
    digest = _digest(prompt)
    sentences = (
        f'Here is a short answer about "{_topic(prompt, 6)}".',
        _FOLLOW_UPS[digest[0] % len(_FOLLOW_UPS)],
        _CLOSERS[digest[1] % len(_CLOSERS)],
    )
    words = " ".join(sentences).split()
    return words if limit is None else words[:limit]


def compose_svg(prompt: str, width: int, height: int) -> str:
    digest = _digest(prompt)
    hue = digest[0] * 360 // 256
    circles = "".join(_svg_circle(digest[i : i + 3], width, height, hue) for i in range(2, 17, 3))
    font_size = max(8, min(width, height) // 16)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">'
        f'<rect width="100%" height="100%" fill="hsl({hue},45%,22%)"/>{circles}'
        f'<text x="50%" y="92%" font-family="sans-serif" font-size="{font_size}" fill="#fff"'
        f' text-anchor="middle">{escape(_topic(prompt, 4))}</text></svg>'
    )


def _svg_circle(seed: bytes, width: int, height: int, hue: int) -> str:
    cx, cy = seed[0] * width // 256, seed[1] * height // 256
    radius = 4 + seed[2] * min(width, height) // 1024
    fill = f"hsl({(hue + seed[2]) % 360},70%,60%)"
    return f'<circle cx="{cx}" cy="{cy}" r="{radius}" fill="{fill}" fill-opacity="0.8"/>'


def compose_wav(prompt: str) -> bytes:
    pitch_hz = 220 + _digest(prompt)[0] * 2  # 220..730 Hz: audible on any speaker
    frames = int(AUDIO_RATE_HZ * AUDIO_SECONDS)
    step = 2 * math.pi * pitch_hz / AUDIO_RATE_HZ
    samples = struct.pack(
        f"<{frames}h", *(round(12000 * math.sin(step * i)) for i in range(frames))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(AUDIO_RATE_HZ)
        wav.writeframes(samples)
    return buffer.getvalue()


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def render_text(request: GenerateRequest) -> Reply:
    words = compose_words(request.input, max_tokens(request.parameters))
    # The last delta has no trailing space so the stream joins to exactly the unary output.
    deltas = [word + " " for word in words[:-1]] + words[-1:]
    return Reply(
        output=" ".join(words),
        chunks=[{"delta": delta} for delta in deltas],
        usage=_usage(request.input, len(words)),
    )


def render_image(request: GenerateRequest) -> Reply:
    width, height = image_size(request.parameters)
    svg = compose_svg(request.input, width, height)
    return _media_reply(
        request, {"image_url": _data_url("image/svg+xml", svg.encode())}, IMAGE_OUTPUT_TOKENS
    )


def render_audio(request: GenerateRequest) -> Reply:
    wav = compose_wav(request.input)
    return _media_reply(request, {"audio_url": _data_url("audio/wav", wav)}, AUDIO_OUTPUT_TOKENS)


def _media_reply(request: GenerateRequest, output: dict[str, str], output_tokens: int) -> Reply:
    return Reply(
        output=output, chunks=[{"output": output}], usage=_usage(request.input, output_tokens)
    )


# --- HTTP -----------------------------------------------------------------------------------


@web.middleware
async def error_envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DemoError as exc:
        retry = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        return error_response(exc.status, exc.message, retry)
    except web.HTTPException as exc:
        # aiohttp's own 404/405/413 get the same envelope as ours.
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, allow)


async def stream_reply(request: web.Request, reply: Reply, gap_s: float) -> web.StreamResponse:
    content_type, encode = stream_encoder(request.headers.get("Accept", ""))
    response = web.StreamResponse(
        headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        for index, chunk in enumerate(reply.chunks):
            if index and gap_s:
                await asyncio.sleep(gap_s)
            await response.write(encode(chunk))
        await response.write(encode({"done": True, "usage": reply.usage}))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the caller hung up; there is no one left to tell
    return response


def generate_handler(render: Renderer) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        config = request.app[CONFIG]
        check_auth(request.headers, config.api_key)
        generate = parse_request(await request.read())
        knobs = parse_knobs(request.query)
        reply = render(generate)
        await apply_knobs(knobs, config.rng)
        if generate.stream:
            return await stream_reply(request, reply, config.stream_delay_s)
        latency_ms = round((time.monotonic() - started) * 1000)
        return json_response(
            {"output": reply.output, "usage": reply.usage, "latency_ms": latency_ms}
        )

    return handle


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def build_app(
    *, api_key: str | None = None, stream_delay_ms: float = 40.0, rng: random.Random | None = None
) -> web.Application:
    """The demo provider app; `rng` drives `fail_rate` and is injectable for tests."""
    app = web.Application(middlewares=[error_envelope])
    app[CONFIG] = DemoConfig(
        api_key=api_key or None, stream_delay_s=stream_delay_ms / 1000, rng=rng or random.Random()
    )
    app.router.add_post("/v1/generate", generate_handler(render_text))
    app.router.add_post("/image/v1/generate", generate_handler(render_image))
    app.router.add_post("/audio/v1/generate", generate_handler(render_audio))
    app.router.add_get("/healthz", healthz)
    return app


async def start(
    *, host: str = "127.0.0.1", port: int = 3000, api_key: str | None = None
) -> tuple[web.AppRunner, int]:
    """Serve on the running loop; port 0 picks a free port, returned as the second item."""
    return await wire.start(build_app(api_key=api_key), host=host, port=port)


# --- command line ---------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo-provider", description="AI1NET demo AI provider (CONTRACT §3)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--api-key",
        default=os.environ.get("DEMO_PROVIDER_API_KEY"),
        help="require this key from callers (default: $DEMO_PROVIDER_API_KEY; unset: no auth)",
    )
    return parser.parse_args(argv)


async def _serve(host: str, port: int, api_key: str | None) -> None:
    await wire.serve_until_signalled(
        build_app(api_key=api_key), host=host, port=port,
        announce=lambda bound: print(f"demo provider listening on http://{host}:{bound}",
                                     flush=True))


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        with asyncio.Runner(loop_factory=wire.loop_factory()) as runner:
            runner.run(_serve(args.host, args.port, args.api_key))
    except OSError as exc:
        print(f"demo provider: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a Ctrl-C that lands before our signal handlers are in place
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
