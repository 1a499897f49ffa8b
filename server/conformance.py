"""The conformance check (CONTRACT §3.1): everything the provider contract asks of an
endpoint, tried against it before it takes paid traffic — by ``ai1net provider-check``,
``POST /v1/models/{name}/check`` and registration with ``"verify": true`` alike.

It calls the endpoint through the gateway's own provider transport, so a hostile endpoint
meets the same limits (bytes, headers, events, time) and the same SSRF guard as in traffic.
Each check ends ``pass``, ``warn`` (works, but not as the contract says) or ``fail``.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ai1net.server.errors import GatewayError
from ai1net.server.http1 import Limits
from ai1net.server.providers import stream_lines
from ai1net.server.registry import call_url
from ai1net.server.transport import ProviderRequest, Transport

PASS, WARN, FAIL = "pass", "warn", "fail"
PROMPT = "Say hello in five words."
MAX_TOKENS = 8
TIMEOUT_S = 15.0
MAX_EVENT_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Target:
    """The endpoint under check and how to call it."""

    endpoint: str
    type: str = "text"
    api: str = "ai1net"
    # The auth header the endpoint expects, ready to send (registry.auth_headers).
    auth: Mapping[str, str] = field(default_factory=dict, repr=False)
    upstream_model: str = ""

    @property
    def url(self) -> str:
        return call_url(self.api, self.endpoint)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    result: str
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    endpoint: str
    checks: tuple[Check, ...]
    p50_ms: float
    p95_ms: float

    @property
    def passed(self) -> bool:
        return all(c.result != FAIL for c in self.checks)

    def summary(self) -> str:
        counts = {r: sum(c.result == r for c in self.checks) for r in (PASS, WARN, FAIL)}
        failed = [f"{c.name} ({c.detail})" for c in self.checks if c.result == FAIL]
        head = f"{counts[PASS]} passed, {counts[WARN]} warned, {counts[FAIL]} failed"
        return f"{head}: {'; '.join(failed)}" if failed else head

    def as_json(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "passed": self.passed, "summary": self.summary(),
                "checks": [{"name": c.name, "result": c.result, "detail": c.detail}
                           for c in self.checks],
                "latency_ms": {"p50": self.p50_ms, "p95": self.p95_ms}}

    def text(self) -> str:
        lines = [f"{c.result.upper():<4}  {c.name:<16} {c.detail}" for c in self.checks]
        lines.append(f"latency over the calls: p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms")
        lines.append(("PASSED" if self.passed else "FAILED") + f": {self.summary()}")
        return "\n".join(lines)


@dataclass(slots=True)
class _Reply:
    status: int = 0
    media_type: str = ""
    document: Any = None
    error: str = ""
    lines: list[bytes] = field(default_factory=list)
    ms: float = 0.0


class Checker:
    def __init__(self, *, transport: Transport, calls: int = 5) -> None:
        self._transport = transport
        self._calls = max(1, calls)

    async def run(self, target: Target) -> Report:
        first = await self._unary(target, {"max_tokens": MAX_TOKENS})
        if not first.status:  # no HTTP answer at all: the other checks would only wait
            return Report(target.endpoint, (Check("answer", FAIL, first.error),), first.ms,
                          first.ms)
        checks: list[Check] = []
        if target.auth:
            checks.append(await self._auth(target))
        checks.extend(self._answer_checks(target, first))
        checks.append(await self._stream(target))
        checks.append(await self._bad_request(target))
        latencies = [first.ms]
        for _ in range(self._calls - 1):
            latencies.append((await self._unary(target, {"max_tokens": MAX_TOKENS})).ms)
        ok = [c for c in checks if c.name == "answer" and c.result != FAIL]
        p50, p95 = _percentile(latencies, 50), _percentile(latencies, 95)
        checks.append(Check("latency", PASS if ok else WARN,
                            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms over {len(latencies)} calls"))
        return Report(target.endpoint, tuple(checks), p50, p95)

    # -- the checks ----------------------------------------------------------------------

    async def _auth(self, target: Target) -> Check:
        reply = await self._call(target, self._body(target, {"max_tokens": MAX_TOKENS}),
                                 keyed=False)
        if reply.error:
            return Check("auth", WARN, f"a call without the key failed: {reply.error}")
        if reply.status in (401, 403):
            return Check("auth", PASS, f"a call without the key is refused ({reply.status})")
        return Check("auth", FAIL, f"a call without the key was answered {reply.status}")

    def _answer_checks(self, target: Target, reply: _Reply) -> list[Check]:
        if reply.error or reply.status != 200:
            why = reply.error or f"HTTP {reply.status}: {_message(reply.document)}"
            return [Check("answer", FAIL, why)]
        document = reply.document
        if not isinstance(document, dict):
            return [Check("answer", FAIL, "the answer is not a JSON object")]
        if target.api == "openai":
            return _openai_answer(document)
        return [_output_check(target.type, document), _usage_check(document.get("usage")),
                _max_tokens_check(document.get("usage"), "output_tokens"),
                _latency_check(document)]

    async def _stream(self, target: Target) -> Check:
        reply = await self._call(target, self._body(target, {"max_tokens": MAX_TOKENS},
                                                    stream=True), stream=True)
        if reply.error:
            return Check("streaming", FAIL, reply.error)
        if reply.status != 200:
            return Check("streaming", FAIL, f"HTTP {reply.status}")
        if reply.media_type == "application/json":
            return Check("streaming", WARN, "the stream was answered as one JSON object "
                                            "(the gateway relays it as one delta)")
        sse = reply.media_type == "text/event-stream"
        events = [line[5:].strip() if sse else line for line in reply.lines
                  if not sse or line.startswith(b"data:")]
        if target.api == "openai":
            if not events or events[-1] != b"[DONE]":
                return Check("streaming", FAIL, "the SSE stream ended without data: [DONE]")
            return Check("streaming", PASS, f"{len(events) - 1} chat.completion.chunk events, "
                                            "then [DONE]")
        try:
            parsed = [orjson.loads(e) for e in events if e != b"[DONE]"]
        except orjson.JSONDecodeError:
            return Check("streaming", FAIL, "a stream line is not JSON")
        deltas = sum(1 for e in parsed if isinstance(e, dict) and ("delta" in e or "output" in e))
        done = any(isinstance(e, dict) and e.get("done") is True for e in parsed) \
            or b"[DONE]" in events
        framing = "SSE" if sse else "NDJSON"
        if not done:
            return Check("streaming", FAIL, f"the {framing} stream ended before "
                                            '{"done": true}')
        return Check("streaming", PASS, f"{deltas} {framing} events, then done")

    async def _bad_request(self, target: Target) -> Check:
        body: dict[str, Any] = {"model": target.upstream_model, "messages": "not a list"} \
            if target.api == "openai" else {"input": 42, "parameters": "not an object"}
        reply = await self._call(target, body)
        if reply.error:
            return Check("errors", WARN, f"a bad request was not answered cleanly: {reply.error}")
        if 400 <= reply.status < 500 and isinstance(reply.document, dict) \
                and isinstance(reply.document.get("error"), dict | str):
            return Check("errors", PASS, f"a bad request is a {reply.status} with the error "
                                         "envelope")
        return Check("errors", WARN, f"a bad request was answered {reply.status} "
                                     f"({reply.media_type or 'no body'}), not a 4xx with "
                                     '{"error": {...}}')

    # -- calling ---------------------------------------------------------------------------

    async def _unary(self, target: Target, parameters: Mapping[str, Any]) -> _Reply:
        return await self._call(target, self._body(target, parameters))

    @staticmethod
    def _body(target: Target, parameters: Mapping[str, Any], *,
              stream: bool = False) -> dict[str, Any]:
        if target.api == "openai":
            body = {"model": target.upstream_model, "messages": [
                {"role": "user", "content": PROMPT}], **parameters}
            if stream:
                body.update(stream=True, stream_options={"include_usage": True})
            return body
        return {"input": PROMPT, "parameters": dict(parameters), **({"stream": True}
                                                                   if stream else {})}

    async def _call(self, target: Target, body: Mapping[str, Any], *, keyed: bool = True,
                    stream: bool = False) -> _Reply:
        headers = {"Content-Type": "application/json", "Idempotency-Key": "conformance-check"}
        if keyed:
            headers.update(target.auth)
        if stream:
            headers["Accept"] = "application/x-ndjson, text/event-stream, application/json"
        request = ProviderRequest(url=target.url, headers=headers, body=orjson.dumps(body),
                                  first_byte_timeout=TIMEOUT_S, limits=Limits())
        reply = _Reply()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(TIMEOUT_S), self._transport.open(request) as response:
                reply.status = response.status
                reply.media_type = response.headers.get("Content-Type", "").split(";")[0] \
                    .strip().lower()
                if stream and reply.status == 200 and reply.media_type != "application/json":
                    reply.lines = [line async for line in stream_lines(response,
                                                                         MAX_EVENT_BYTES)]
                else:
                    raw = await response.read()
                    try:
                        reply.document = orjson.loads(raw) if raw else None
                    except orjson.JSONDecodeError:
                        reply.document = None
                        if reply.status == 200 and not stream:
                            reply.error = "the answer is not JSON"
        except GatewayError as error:
            reply.error = error.message
        except TimeoutError:
            reply.error = f"no complete answer within {TIMEOUT_S:g} s"
        reply.ms = (time.perf_counter() - started) * 1000
        return reply


# -- judging answers (pure) -------------------------------------------------------------------


def _output_check(type: str, document: Mapping[str, Any]) -> Check:
    output = document.get("output")
    if type == "text":
        ok = isinstance(output, str)
        want = "a string"
    else:
        name = "image_url" if type == "image" else "audio_url"
        ok = isinstance(output, dict) and isinstance(output.get(name), str)
        want = f'{{"{name}": ...}}'
    if ok:
        return Check("answer", PASS, f"output is {want}")
    return Check("answer", FAIL, f"output must be {want} for a {type} model")


def _usage_check(usage: object) -> Check:
    if not isinstance(usage, dict):
        return Check("usage", WARN, "no usage: the gateway estimates tokens (about 4 "
                                    "characters a token) and marks them estimated")
    counts = [usage.get(n) for n in ("input_tokens", "output_tokens")]
    if any(not isinstance(c, int | float) or isinstance(c, bool) for c in counts):
        return Check("usage", WARN, "usage lacks input_tokens or output_tokens: estimated")
    if any(isinstance(c, float) and not c.is_integer() for c in counts):
        return Check("usage", WARN, f"fractional token counts ({counts[0]}, {counts[1]}): "
                                    "the gateway rounds them up")
    return Check("usage", PASS, f"whole token counts ({counts[0]} in, {counts[1]} out)")


def _max_tokens_check(usage: object, name: str) -> Check:
    count = usage.get(name) if isinstance(usage, dict) else None
    if not isinstance(count, int | float) or isinstance(count, bool):
        return Check("max_tokens", WARN, "no output token count to hold against max_tokens")
    if math.ceil(count) > MAX_TOKENS:
        return Check("max_tokens", FAIL, f"{count} output tokens for max_tokens {MAX_TOKENS}")
    return Check("max_tokens", PASS, f"{count} output tokens within max_tokens {MAX_TOKENS}")


def _latency_check(document: Mapping[str, Any]) -> Check:
    latency = document.get("latency_ms")
    if isinstance(latency, int | float) and not isinstance(latency, bool) and latency >= 0:
        return Check("latency_ms", PASS, f"latency_ms {latency}")
    return Check("latency_ms", WARN, "no latency_ms in the answer")


def _openai_answer(document: Mapping[str, Any]) -> list[Check]:
    choices = document.get("choices")
    message = choices[0].get("message") if isinstance(choices, list) and choices \
        and isinstance(choices[0], dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        return [Check("answer", FAIL, "not a chat completion: choices[0].message.content "
                                      "is missing")]
    checks = [Check("answer", PASS, "a chat completion with choices[0].message.content")]
    usage = document.get("usage")
    renamed = {"input_tokens": usage.get("prompt_tokens"),
               "output_tokens": usage.get("completion_tokens")} \
        if isinstance(usage, dict) else None
    checks.append(_usage_check(renamed))
    checks.append(_max_tokens_check(renamed, "output_tokens"))
    return checks


def _message(document: object) -> str:
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return str(error)[:200] if error else "no error message"


def _percentile(values: list[float], percent: int) -> float:
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[percent - 1], 1)
