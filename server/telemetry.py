"""The spans a call makes: light spans, the attributes of a generate span (GenAI semantic
conventions plus ``ai1net.*``), the provider call's CLIENT span, the usage flush's span.

What a call makes follows the process's `TraceMode`, decided once by the set-up
(``tracing.setup_tracing``) and passed in to whoever makes spans: nothing (``OFF``, tracing
never set up), a `LightSpan` (``LIGHT``: nothing exported, trace context still travels), or
the SDK's recorded spans (``FULL``). Trace context in and out is ``ai1net.common.tracecontext``.
"""

from __future__ import annotations

import contextlib
import enum
import random
from collections.abc import Iterable
from contextlib import AbstractContextManager
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.util.types import AttributeValue

from ai1net.common.tracecontext import inject

TRACER_NAME = "ai1net"
GENAI_PROVIDER = "ai1net"


class TraceMode(enum.Enum):
    """What calls make: nothing, light spans, or spans recorded and exported."""

    OFF = "off"
    LIGHT = "light"
    FULL = "full"


# The span of a call when tracing is off: the invalid span, current context unchanged.
NO_SPAN: AbstractContextManager[Span] = contextlib.nullcontext(INVALID_SPAN)


class LightSpan:
    """A span that is never recorded, made current while the block runs.

    It continues the current trace (a caller's ``traceparent``, sampled flag included) or
    starts one, with a fresh span id: what the SDK makes when it samples nothing, without
    its sampler, span object and processors. Made when calls run in `TraceMode.LIGHT`.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> Span:
        parent = trace.get_current_span().get_span_context()
        span_id = random.getrandbits(64) or 1
        if parent.is_valid:
            context = SpanContext(parent.trace_id, span_id, is_remote=False,
                                  trace_flags=parent.trace_flags, trace_state=parent.trace_state)
        else:
            context = SpanContext(random.getrandbits(128) or 1, span_id, is_remote=False,
                                  trace_flags=TraceFlags(TraceFlags.DEFAULT))
        span = NonRecordingSpan(context)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(self, *_exc: object) -> None:
        otel_context.detach(self._token)


def get_tracer() -> Tracer:
    return trace.get_tracer(TRACER_NAME)


# -- generate spans -------------------------------------------------------------------------


def operation_name(model_type: str) -> str:
    """GenAI ``gen_ai.operation.name``: one input string to text is a text completion;
    image and audio are ``generate_content`` (the convention's multimodal operation)."""
    return "text_completion" if model_type in ("", "text") else "generate_content"


def generate_span_attributes(
    *, model_type: str = "text", request_model: str = "", response_model: str = "",
    response_id: str = "", input_tokens: int | None = None, output_tokens: int | None = None,
    max_tokens: int | None = None, temperature: float | None = None,
    route_strategy: str = "", route_attempts: int | None = None, fallback: bool | None = None,
    cost_usd: float | None = None, ttft_ms: float | None = None,
) -> dict[str, AttributeValue]:
    """The attributes of an ``ai1net.generate`` span; empty and None values are left out.

    Never pass the prompt, the output or any header here.
    """
    candidates: dict[str, AttributeValue | None] = {
        "gen_ai.operation.name": operation_name(model_type),
        # gen_ai.system is the older name of gen_ai.provider.name; backends read either.
        "gen_ai.provider.name": GENAI_PROVIDER,
        "gen_ai.system": GENAI_PROVIDER,
        "gen_ai.request.model": request_model,
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": response_id,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": temperature,
        "ai1net.route.strategy": route_strategy,
        "ai1net.route.attempts": route_attempts,
        "ai1net.route.fallback": fallback,
        "ai1net.cost_usd": cost_usd,
        "ai1net.ttft_ms": ttft_ms,
    }
    return {key: value for key, value in candidates.items() if value is not None and value != ""}


def record_error(span: Span, error_type: str, description: str | None = None) -> None:
    """Mark a failed call: status ERROR and ``error.type`` (a low-cardinality name such as
    the domain error's class). ``description`` must be the gateway's own words, never a
    provider's body, which may quote the prompt."""
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, description))


class ProviderSpan:
    """The provider call's CLIENT span (HTTP semantic conventions), current while it runs so
    that `inject` names it the provider's parent. Only made when spans are recorded."""

    __slots__ = ("_manager", "_span")

    def __init__(self, url: str, method: str = "POST") -> None:
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        self._manager = get_tracer().start_as_current_span(
            method, kind=SpanKind.CLIENT, record_exception=False, attributes={
                "http.request.method": method, "url.full": public_url(url),
                "server.address": parts.hostname or "",
                "server.port": parts.port or (443 if tls else 80)})

    def start(self, headers: dict[str, str]) -> None:
        """Enter the span and write its trace context into the request's ``headers``."""
        self._span = self._manager.__enter__()
        inject(headers)

    def end(self, status: int, error: BaseException | None) -> None:
        if status:
            self._span.set_attribute("http.response.status_code", status)
        if error is not None:
            record_error(self._span, type(error).__name__)
        elif status >= 400:
            record_error(self._span, str(status))
        self._manager.__exit__(None, None, None)


def public_url(url: str) -> str:
    """A provider URL may carry a key in its query or user info: spans get neither."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host or ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# -- usage flushes ---------------------------------------------------------------------------


def call_context() -> SpanContext | None:
    """The current call's span context, to keep with its usage event (to link it from the
    recorded flush span; None outside a span). Asked only when spans are recorded."""
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def usage_flush_span(calls: Iterable[SpanContext | None]) -> AbstractContextManager[Span]:
    """A span in a trace of its own, linked to the calls whose usage it writes (the SDK keeps
    the first 128 links)."""
    unique = {(call.trace_id, call.span_id): call for call in calls if call is not None}
    return get_tracer().start_as_current_span(
        "ai1net.usage.flush", context=Context(), links=[Link(call) for call in unique.values()])
