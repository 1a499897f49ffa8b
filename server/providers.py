"""Calling a provider as CONTRACT §3 says, and reading its answers and errors."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson

from ai1net.common.tracecontext import inject
from ai1net.server import openai_upstream
from ai1net.server.errors import (
    GatewayError,
    ProviderRejected,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamViolation,
)
from ai1net.server.http1 import DEFAULT_LIMITS, Limits
from ai1net.server.memory import TRIMMER
from ai1net.server.registry import ModelRecord
from ai1net.server.transport import ProviderRequest, Transport, TransportResponse

CHARS_PER_TOKEN = 4
MAX_MESSAGE = 500
MAX_RETRY_AFTER_S = 3600.0


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class TokenCount:
    input_tokens: int
    output_tokens: int
    estimated: bool


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class Answer:
    output: str | dict[str, Any]
    tokens: TokenCount
    # Why the provider stopped ("stop", "length", …), when it said.
    finish_reason: str = ""


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class Delta:
    text: str


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class Output:
    value: str | dict[str, Any]


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class Done:
    usage: Mapping[str, Any] | None
    finish_reason: str = ""


StreamEvent = Delta | Output | Done


class ProviderClient:
    def __init__(self, *, transport: Transport) -> None:
        self._transport = transport

    async def generate(self, model: ModelRecord, *, input: str, parameters: Mapping[str, Any],
                       first_byte_timeout: float, idempotency_key: str) -> Answer:
        """One unary call. The caller bounds the total time."""
        request = self._request(model, input, parameters, first_byte_timeout,
                                idempotency_key, stream=False)
        with _ProviderErrors(model):
            async with self._transport.open(request) as response:
                body = await response.read()
            return parse_answer(response.status, response.headers, body, input, api=model.api)

    async def stream(self, model: ModelRecord, *, input: str, parameters: Mapping[str, Any],
                     first_byte_timeout: float, idempotency_key: str,
                     ) -> AsyncGenerator[StreamEvent]:
        """Deltas (or one output) as they arrive, then Done; an unfinished stream raises."""
        request = self._request(model, input, parameters, first_byte_timeout,
                                idempotency_key, stream=True)
        with _ProviderErrors(model):
            async for event in self._events(request, input, model):
                yield event

    async def _events(self, request: ProviderRequest, input: str, model: ModelRecord,
                      ) -> AsyncGenerator[StreamEvent]:
        done: Done | None = None
        async with self._transport.open(request) as response:
            if response.status >= 300:
                raise provider_error(response.status, response.headers, await response.read())
            if _media_type(response.headers) == "application/json":
                answer = parse_answer(response.status, response.headers,
                                      await response.read(), input, api=model.api)
                yield Delta(answer.output) if isinstance(answer.output, str) \
                    else Output(answer.output)
                yield Done({"input_tokens": answer.tokens.input_tokens,
                            "output_tokens": answer.tokens.output_tokens}
                           if not answer.tokens.estimated else None, answer.finish_reason)
                return
            sse = _media_type(response.headers) == "text/event-stream"
            decoded = _openai_events(response, limit=model.max_event_bytes) \
                if model.api == "openai" \
                else _events(response, sse=sse, limit=model.max_event_bytes)
            async with aclosing(decoded) as events:
                async for event in events:
                    if isinstance(event, Done):
                        done = event
                        break
                    yield event
        # Done leaves the exchange first: the provider call ended well, whatever the
        # caller does next.
        if done is None:
            raise UpstreamError("the provider's stream ended before it said done")
        yield done

    def _request(self, model: ModelRecord, input: str, parameters: Mapping[str, Any],
                 first_byte_timeout: float, idempotency_key: str, *,
                 stream: bool) -> ProviderRequest:
        headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
                   **model.auth_headers}
        inject(headers)
        if model.api == "openai":
            document = openai_upstream.request_document(model.upstream_model or model.name, input,
                                                    parameters, stream=stream)
        else:
            document = {"input": input, "parameters": parameters}
            if stream:
                document["stream"] = True
        if stream:
            headers["Accept"] = "application/x-ndjson, text/event-stream, application/json"
        return ProviderRequest(url=model.call_url, headers=headers, body=orjson.dumps(document),
                               first_byte_timeout=first_byte_timeout,
                               limits=_limits(model.max_response_bytes))


def _limits(max_response_bytes: int) -> Limits:
    if max_response_bytes == DEFAULT_LIMITS.body_bytes:
        return DEFAULT_LIMITS
    return Limits(body_bytes=max_response_bytes)


class _ProviderErrors:
    """Provider messages are passed on, never with the model's credential in them; a
    provider's failure names the model."""

    __slots__ = ("_model",)

    def __init__(self, model: ModelRecord) -> None:
        self._model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, error: BaseException | None, _tb: object) -> None:
        if not isinstance(error, GatewayError):
            return
        message = error.message
        if isinstance(error, UpstreamError | UpstreamTimeout):
            message = f"model {self._model.name!r}: {message}"
        for value in self._model.auth_headers.values():
            secret = value.removeprefix("Bearer ")
            if secret:
                message = message.replace(secret, "[redacted]")
        if message != error.message:
            error.message = message
            error.args = (message,)


# -- reading answers (pure) ----------------------------------------------------------------


def parse_answer(status: int, headers: Mapping[str, str], body: bytes, input: str, *,
                 api: str = "ai1net") -> Answer:
    if status >= 300:
        raise provider_error(status, headers, body)
    document = _json_object(body)
    if api == "openai":
        text, usage, finish = openai_upstream.answer_parts(document)
        return Answer(output=text, tokens=count_tokens(usage, input, text),
                      finish_reason=finish)
    if "output" not in document:
        raise UpstreamError("the provider's answer has no output")
    output = _checked_output(document["output"])
    said = document.get("finish_reason")
    return Answer(output=output, tokens=count_tokens(document.get("usage"), input, output),
                  finish_reason="" if said is None else openai_upstream.finish_reason(said))


def count_tokens(usage: object, input: str, output: object) -> TokenCount:
    """Whole token counts: fractions round up; a missing count is estimated (~4 chars)."""
    given = usage if isinstance(usage, Mapping) else {}
    reported_in = _count(given, "input_tokens", "prompt_tokens")
    reported_out = _count(given, "output_tokens", "completion_tokens")
    estimated = reported_in is None or reported_out is None
    return TokenCount(
        input_tokens=reported_in if reported_in is not None else estimate_tokens(input),
        output_tokens=reported_out if reported_out is not None else estimate_tokens(output),
        estimated=estimated)


def estimate_tokens(value: object) -> int:
    return math.ceil(len(value) / CHARS_PER_TOKEN) if isinstance(value, str) else 0


def provider_error(status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
    """A provider's failure as the domain error CONTRACT §3 assigns to it."""
    message = _error_message(body) or f"HTTP {status}"
    if status in (400, 422):
        return ProviderRejected(f"the provider rejected the request: {message}")
    if status == 429:
        return UpstreamRateLimited(f"the provider is rate limiting: {message}",
                                   retry_after_s=retry_after(headers.get("Retry-After")))
    if status in (401, 403):
        return UpstreamError(f"the provider refused the gateway's credentials (HTTP {status})")
    if 300 <= status < 400:
        return UpstreamViolation(f"the provider answered with a redirect (HTTP {status}), which "
                                 f"the gateway does not follow", kind="redirect")
    return UpstreamError(f"the provider failed with HTTP {status}: {message}")


def retry_after(value: str | None) -> float:
    """A provider's Retry-After (seconds or an HTTP date), at least 1 s and at most
    ``MAX_RETRY_AFTER_S``; anything else reads as 1 s."""
    text = (value or "").strip()
    if text.isascii() and text.isdigit():
        return min(max(1.0, float(text)), MAX_RETRY_AFTER_S)
    try:
        parsed = email.utils.parsedate_to_datetime(text) if "," in text else None
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return 1.0
    return min(max(1.0, parsed.timestamp() - time.time()), MAX_RETRY_AFTER_S)


def _count(usage: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) \
                and math.isfinite(value) and value >= 0:
            return math.ceil(value)
    return None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("the provider answered with invalid JSON") from exc
    if not isinstance(document, dict):
        raise UpstreamError("the provider answered with JSON that is not an object")
    return document


def _checked_output(output: object) -> str | dict[str, Any]:
    if isinstance(output, str | dict):
        return output
    raise UpstreamError("the provider's output is neither a string nor an object")


def _error_message(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:MAX_MESSAGE].decode(errors="replace").strip()
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:MAX_MESSAGE] if error else ""


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


async def _events(response: TransportResponse, *, sse: bool,
                  limit: int) -> AsyncGenerator[StreamEvent]:
    async for line in stream_lines(response, limit):
        if sse:
            if not line.startswith(b"data:"):
                continue
            line = line[5:].strip()
            if line == b"[DONE]":
                yield Done(None)
                return
        event = _stream_event(line)
        if event is not None:
            yield event


async def stream_lines(response: TransportResponse, limit: int) -> AsyncGenerator[bytes]:
    """Lines as they arrive, however the provider's writes were cut into chunks; a line
    over ``limit`` bytes (``max_event_bytes``) fails as soon as it is longer."""
    pending = bytearray()
    async for chunk in response.chunks():
        scanned = len(pending)  # the bytes before hold no newline
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", scanned)) >= 0:
            if end - start > limit:
                raise _event_too_large(limit, pending)
            line = bytes(pending[start:end]).strip()
            if line:
                yield line
            start = scanned = end + 1
        del pending[:start]
        if len(pending) > limit:
            raise _event_too_large(limit, pending)
    line = bytes(pending).strip()
    if line:
        yield line


def _event_too_large(limit: int, pending: bytearray) -> UpstreamViolation:
    """The violation; what was held of the line is let go first (and the memory with it)."""
    pending.clear()
    TRIMMER.trim_soon()
    return UpstreamViolation(f"the provider sent a stream line or event over {limit} bytes "
                             f"(max_event_bytes)", kind="event_bytes")


async def _openai_events(response: TransportResponse, *,
                         limit: int) -> AsyncGenerator[StreamEvent]:
    """A chat-completions SSE stream: text deltas, then Done at ``data: [DONE]`` with the
    usage and finish reason its last chunks carried."""
    reader = openai_upstream.StreamReader()
    async for line in stream_lines(response, limit):
        if not line.startswith(b"data:"):
            continue
        line = line[5:].strip()
        if line == b"[DONE]":
            usage = reader.usage
            yield Done(usage if isinstance(usage, Mapping) else None, reader.finish_reason)
            return
        text = reader.read(_json_object(line))
        if text:
            yield Delta(text)


def _stream_event(line: bytes) -> StreamEvent | None:
    document = _json_object(line)
    if "error" in document:
        raise UpstreamError(f"the provider failed mid-stream: {_error_message(line)}")
    if "delta" in document:
        delta = document["delta"]
        return Delta(delta if isinstance(delta, str) else orjson.dumps(delta).decode())
    if "output" in document:
        return Output(_checked_output(document["output"]))
    if document.get("done"):
        usage = document.get("usage")
        return Done(usage if isinstance(usage, Mapping) else None,
                    openai_upstream.finish_reason(document.get("finish_reason")))
    return None
