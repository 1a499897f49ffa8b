"""A generate call's data: what is asked, what comes back, and the checks on the asking."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ai1net.server.errors import InvalidArgument
from ai1net.server.providers import Delta, Output, TokenCount
from ai1net.server.registry import ModelRecord
from ai1net.server.routing import STRATEGIES, RouteRequest

MAX_INPUT_CHARS = 1_000_000
# Output tokens reserved against limits and budgets when a call sets no max_tokens.
DEFAULT_MAX_TOKENS = 1024
TYPES = ("text", "image", "audio")
STRING_PARAMETERS = ("size", "voice", "format")


@dataclass(frozen=True, slots=True)
class GenerateCall:
    input: str
    model: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    route: RouteRequest = field(default_factory=RouteRequest)
    fallbacks: tuple[str, ...] = ()
    # Seconds left before the caller's deadline, if it set one.
    time_remaining: float | None = None
    # Unary only: ask the next candidate too after this many ms without an answer.
    hedge_ms: int | None = None
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    model: ModelRecord
    output: str | dict[str, Any]
    tokens: TokenCount
    latency_ms: int
    ttft_ms: int
    cost_nanos: int
    attempts: int
    route: str
    # x-ratelimit-* values of the caller's key after this call.
    rate_limits: Mapping[str, str] = field(default_factory=dict)
    # The gateway's own share of latency_ms (the rest is waiting on providers).
    overhead_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    """Who is answering a streamed call, known once its first token arrived."""

    model: ModelRecord
    attempts: int
    route: str
    id: str = ""  # the generation's id, as its final summary will carry it


# What a streaming call hands its caller with each piece of the answer.
Emit = Callable[[Progress, Delta | Output], Awaitable[None]]


def check_call(call: GenerateCall) -> None:
    """The checks CONTRACT §2.1 names, each failing with the field it concerns."""
    if not call.input:
        raise InvalidArgument("input", "is required and must be a non-empty string")
    if len(call.input) > MAX_INPUT_CHARS:
        raise InvalidArgument("input", f"must be at most {MAX_INPUT_CHARS} characters")
    check_parameters(call.parameters)
    if call.route.type not in TYPES:
        raise InvalidArgument("routing.type", f"must be one of {', '.join(TYPES)}")
    if call.route.strategy not in STRATEGIES:
        raise InvalidArgument("routing.strategy", f"must be one of {', '.join(STRATEGIES)}")
    for name in ("max_latency_ms", "max_price_per_1k_tokens"):
        value = getattr(call.route, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            raise InvalidArgument(f"routing.{name}", "must be a number ≥ 0")


def check_parameters(parameters: Mapping[str, Any]) -> None:
    max_tokens = parameters.get("max_tokens")
    if max_tokens is not None and not (
            isinstance(max_tokens, int | float) and not isinstance(max_tokens, bool)
            and float(max_tokens).is_integer() and max_tokens >= 1):
        raise InvalidArgument("parameters.max_tokens", "must be a positive integer")
    temperature = parameters.get("temperature")
    if temperature is not None and not (
            isinstance(temperature, int | float) and not isinstance(temperature, bool)
            and 0 <= temperature <= 2):
        raise InvalidArgument("parameters.temperature", "must be a number in [0, 2]")
    for name in STRING_PARAMETERS:
        if name in parameters and not isinstance(parameters[name], str):
            raise InvalidArgument(f"parameters.{name}", "must be a string")
