"""One generate call: check it, plan the route, call providers, account the result."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ai1net.server.crypto import new_id
from ai1net.server.errors import (
    Cancelled,
    GatewayError,
    InvalidArgument,
    UpstreamTimeout,
)
from ai1net.server.health import HealthBoard
from ai1net.server.keys import Principal
from ai1net.server.money import call_cost_nanos
from ai1net.server.providers import Answer, ProviderClient, TokenCount
from ai1net.server.registry import ModelRecord, Registry
from ai1net.server.routing import (
    MAX_ATTEMPTS,
    STRATEGIES,
    Plan,
    RouteRequest,
    plan_explicit,
    plan_routed,
)
from ai1net.server.usage import Ledger, UsageEvent, now_ms

MAX_INPUT_CHARS = 1_000_000
TYPES = ("text", "image", "audio")
STRING_PARAMETERS = ("size", "voice", "format")


@dataclass(frozen=True, slots=True)
class GenerateCall:
    input: str
    model: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    route: RouteRequest = RouteRequest()
    fallbacks: tuple[str, ...] = ()
    # Seconds left before the caller's deadline, if it set one.
    time_remaining: float | None = None


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


class Generator:
    def __init__(self, *, registry: Registry, providers: ProviderClient, health: HealthBoard,
                 ledger: Ledger, rng: random.Random | None = None) -> None:
        self._registry = registry
        self._providers = providers
        self._health = health
        self._ledger = ledger
        self._rng = rng or random.Random()

    def plan(self, call: GenerateCall) -> Plan:
        check_call(call)
        if call.model:
            return plan_explicit(call.model, call.fallbacks, self._registry.find)
        return plan_routed(self._registry.all(), call.route, self._health.observe, self._rng)

    async def generate(self, caller: Principal, call: GenerateCall) -> Outcome:
        plan = self.plan(call)
        started = time.perf_counter()
        call_id = new_id("gen")
        attempts = 0
        model = plan.models[0]
        try:
            for attempts, model in enumerate(plan.models[:MAX_ATTEMPTS], start=1):
                try:
                    answer = await self._attempt(model, call, started)
                except GatewayError as error:
                    last = attempts == len(plan.models) or not error.retryable
                    if last:
                        raise
                    continue
                return self._finish(caller, call_id, model, answer, started, attempts, plan)
        except asyncio.CancelledError:
            self._account(caller, call_id, model, None, started, "cancelled", "CANCELLED")
            raise
        except GatewayError as error:
            outcome = "timeout" if isinstance(error, UpstreamTimeout) else "error"
            self._account(caller, call_id, model, None, started, outcome, error.reason)
            raise
        raise Cancelled("no attempt was made")  # unreachable: the plan is never empty

    async def _attempt(self, model: ModelRecord, call: GenerateCall, started: float) -> Answer:
        timeout = _budget(model, call, started)
        self._health.begin(model.name)
        attempt_started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                answer = await self._providers.generate(
                    model, input=call.input, parameters=call.parameters,
                    first_byte_timeout=min(timeout, model.first_byte_timeout_ms / 1000))
        except TimeoutError as exc:
            self._health.failure(model.name, latency_ms=_ms_since(attempt_started))
            raise UpstreamTimeout(f"model {model.name!r} did not answer within "
                                  f"{round(timeout * 1000)} ms") from exc
        except GatewayError as error:
            if error.retryable:
                self._health.failure(model.name, latency_ms=_ms_since(attempt_started))
            raise
        self._health.success(model.name, latency_ms=_ms_since(attempt_started))
        return answer

    def _finish(self, caller: Principal, call_id: str, model: ModelRecord, answer: Answer,
                started: float, attempts: int, plan: Plan) -> Outcome:
        latency_ms = round(_ms_since(started))
        cost = self._account(caller, call_id, model, answer.tokens, started, "ok", "")
        return Outcome(id=call_id, model=model, output=answer.output, tokens=answer.tokens,
                       latency_ms=latency_ms, ttft_ms=latency_ms, cost_nanos=cost,
                       attempts=attempts, route=plan.reason)

    def _account(self, caller: Principal, call_id: str, model: ModelRecord,
                 tokens: TokenCount | None, started: float, outcome: str,
                 error_type: str) -> int:
        tokens = tokens or TokenCount(0, 0, False)
        cost = call_cost_nanos(input_tokens=tokens.input_tokens,
                               output_tokens=tokens.output_tokens,
                               input_per_1k=model.input_price_nanos,
                               output_per_1k=model.output_price_nanos)
        latency = round(_ms_since(started))
        self._ledger.record(UsageEvent(
            id=call_id, ts_ms=now_ms(), key_id=caller.id, model=model.name,
            model_owner=model.owner, input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens, estimated=tokens.estimated, cost_nanos=cost,
            latency_ms=latency, ttft_ms=latency if outcome == "ok" else 0, outcome=outcome,
            error_type=error_type))
        return cost


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


def _budget(model: ModelRecord, call: GenerateCall, started: float) -> float:
    """Seconds this attempt may take: the model's timeout within the caller's deadline."""
    budget = model.timeout_ms / 1000
    if call.time_remaining is not None:
        budget = min(budget, call.time_remaining - (time.perf_counter() - started))
    if budget <= 0:
        raise UpstreamTimeout("the deadline passed before the provider could be called")
    return budget


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
