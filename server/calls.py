"""A generate call's data: what is asked, what comes back, and the checks on the asking."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ai1net.server import rules
from ai1net.server.errors import InvalidArgument
from ai1net.server.providers import Delta, Output, TokenCount
from ai1net.server.registry import ModelRecord
from ai1net.server.routing import RouteRequest

# Output tokens reserved against limits and budgets when a call sets no max_tokens.
DEFAULT_MAX_TOKENS = 1024
# The parameters the gateway checks; any others pass through to the provider unchecked.
PARAMETERS = tuple(rules.leaf(path) for path in rules.GENERATE if path.startswith("parameters."))
# Each checked field with its path and rule, looked up once (check_call runs on every call).
_INPUT = rules.GENERATE["input"]
_PARAMETER_RULES = tuple((name, f"parameters.{name}", rules.GENERATE[f"parameters.{name}"])
                         for name in PARAMETERS)
_ROUTING_RULES = tuple((name, f"routing.{name}", rules.GENERATE[f"routing.{name}"])
                       for name in ("type", "strategy", "max_latency_ms",
                                    "max_price_per_1k_tokens"))


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
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


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
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
    # Why the provider stopped, when it said (rules.FINISH_REASONS).
    finish_reason: str = ""


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
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
    _INPUT.check("input", call.input)
    if call.parameters:
        check_parameters(call.parameters)
    route = call.route
    for name, path, rule in _ROUTING_RULES:
        value = getattr(route, name)
        if value is not None:
            rule.check(path, value)


def check_parameters(parameters: Mapping[str, Any]) -> None:
    for name, path, rule in _PARAMETER_RULES:
        value = parameters.get(name)
        if value is not None:
            rule.check(path, value)
