"""One generate call: check it, plan the route, call providers, account the result.

Unary and streaming calls share the plan, the fallback rule and the accounting.
Fallback happens only before anything reached the caller: a streamed call that
fails after its first chunk ends with the error and is billed for what was delivered.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from ai1net.common.deadlines import deadline
from ai1net.common.ids import new_id
from ai1net.server.calls import (
    DEFAULT_MAX_TOKENS,
    Emit,
    GenerateCall,
    Outcome,
    Progress,
    check_call,
)
from ai1net.server.errors import (
    GatewayError,
    Overloaded,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
    UpstreamViolation,
)
from ai1net.server.health import HealthBoard
from ai1net.server.keys import Principal
from ai1net.server.load import InFlight
from ai1net.server.memory import TRIMMER
from ai1net.server.money import call_cost_nanos, nanos_to_usd
from ai1net.server.observe import CallReport, Observer
from ai1net.server.providers import (
    Answer,
    Delta,
    Done,
    ProviderClient,
    StreamEvent,
    TokenCount,
    count_tokens,
    estimate_tokens,
)
from ai1net.server.quota import Admission, Quota
from ai1net.server.registry import ModelRecord, Registry
from ai1net.server.routing import (
    MAX_ATTEMPTS,
    NO_RATINGS,
    Plan,
    Rated,
    plan_explicit,
    plan_routed,
)
from ai1net.server.usage import Ledger, UsageEvent, now_ms


@dataclass(slots=True)
class _Call:
    """One call's running account, whatever way it ends."""

    caller: Principal
    call: GenerateCall
    plan: Plan
    method: str
    id: str = field(default_factory=lambda: new_id("gen"))
    started: float = field(default_factory=time.perf_counter)
    attempts: int = 0
    model: ModelRecord | None = None
    ttft_ms: int = 0
    text: list[str] = field(default_factory=list)
    output: str | dict[str, Any] | None = None
    # What was accounted, for settling the quota reservation.
    tokens_used: int = 0
    cost_nanos: int = 0
    admission: Admission | None = None
    span: Span | None = None
    provider_ms: float = 0.0
    # The model whose max_concurrency slot this call holds, if any.
    slot: str | None = None
    # How long the answering attempt took to its first event (streams settle health late).
    first_ms: float = 0.0

    def elapsed_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)

    def delivered(self, usage: Mapping[str, Any] | None) -> TokenCount:
        output = self.output if self.output is not None else "".join(self.text)
        return count_tokens(usage, self.call.input, output)

    def overhead_ms(self) -> float:
        return max(0.0, (time.perf_counter() - self.started) * 1000 - self.provider_ms)


class Generator:
    def __init__(self, *, registry: Registry, providers: ProviderClient, health: HealthBoard,
                 ledger: Ledger, quota: Quota, observer: Observer | None = None,
                 rng: random.Random | None = None, in_flight: InFlight | None = None,
                 rated: Rated | None = None) -> None:
        self._quota = quota
        self._in_flight = in_flight or InFlight()
        self._observer = observer or Observer()
        self._registry = registry
        self._providers = providers
        self._health = health
        self._ledger = ledger
        self._rng = rng or random.Random()
        self._rated = rated or (lambda _name: NO_RATINGS)

    def plan(self, call: GenerateCall) -> Plan:
        check_call(call)
        if call.model:
            return self._admitted(plan_explicit(call.model, call.fallbacks,
                                                self._registry.find))
        return plan_routed(self._registry.all(), call.route, self._health.observe, self._rng,
                           self._rated)

    def _admitted(self, plan: Plan) -> Plan:
        """The named models whose breaker lets a call through; when none does, the call
        fails fast instead of reaching a model that keeps failing."""
        models = tuple(m for m in plan.models if self._health.admits(m.name))
        if len(models) == len(plan.models):
            return plan
        if not models:
            wait = min(self._health.ejected_for(m.name) for m in plan.models)
            raise Unavailable(f"model {plan.models[0].name!r} is ejected after repeated "
                              f"failures; try again in {math.ceil(wait)} s",
                              retry_after_s=max(1.0, wait))
        return Plan(models, plan.reason)

    async def generate(self, caller: Principal, call: GenerateCall) -> Outcome:
        with self._observer.call_span("Generate") as span:
            state = _Call(caller=caller, call=call, plan=self.plan(call), method="Generate",
                          span=span)
            self._in_flight.enter()
            try:
                async with _Admitted(self, state):
                    with self._observer.route_span(span):
                        if call.hedge_ms is not None and len(state.plan.models) > 1:
                            answer = await self._hedged(state, call, call.hedge_ms / 1000)
                        else:
                            answer = await self._first_success(state, self._unary_attempt)
                    state.output = answer.output
                    state.ttft_ms = state.elapsed_ms()
                    return self._outcome(state, answer.tokens, answer.finish_reason)
            finally:
                self._leave(state)

    async def stream(self, caller: Principal, call: GenerateCall, emit: Emit) -> Outcome:
        """Hand deltas (or one output) to ``emit`` as they arrive; return the summary."""
        with self._observer.call_span("GenerateStream") as span:
            state = _Call(caller=caller, call=call, plan=self.plan(call),
                          method="GenerateStream", span=span)
            self._in_flight.enter()
            try:
                async with _Admitted(self, state):
                    with self._observer.route_span(span):
                        events, first = await self._first_success(
                            state, self._stream_attempt, streamed=True)
                    state.ttft_ms = state.elapsed_ms()
                    done = await self._relay(state, call, events, first, emit)
                    return self._outcome(state, state.delivered(done.usage),
                                         done.finish_reason)
            finally:
                self._leave(state)

    def _leave(self, state: _Call) -> None:
        self._in_flight.leave()
        if state.slot is not None:
            self._in_flight.give(state.slot)
            state.slot = None

    # -- attempts ------------------------------------------------------------------------

    async def _first_success(self, state: _Call,
                             attempt: Callable[[ModelRecord, _Call, float], Awaitable[Any]],
                             *, streamed: bool = False) -> Any:
        """The first attempt that succeeds, moving on only after a retryable failure (a
        model at its max_concurrency is one). The answering model's slot stays taken."""
        candidates = state.plan.models[:MAX_ATTEMPTS]
        for state.attempts, state.model in enumerate(candidates, start=1):
            try:
                budget = _budget(state.model, state.call, state)
                self._take(state.model)
                state.slot = state.model.name
                return await self._observed(state, state.model,
                                            attempt(state.model, state, budget),
                                            settle=not streamed)
            except GatewayError as error:
                self._leave_slot(state)
                if not error.retryable or state.attempts == len(candidates):
                    raise
            except BaseException:
                self._leave_slot(state)
                raise
        raise AssertionError("a plan is never empty")

    def _take(self, model: ModelRecord) -> None:
        try:
            self._in_flight.take(model.name, model.max_concurrency)
        except Overloaded:
            self._observer.shed("model")
            raise

    def _leave_slot(self, state: _Call) -> None:
        if state.slot is not None:
            self._in_flight.give(state.slot)
            state.slot = None

    async def _observed(self, state: _Call, model: ModelRecord, attempt: Awaitable[Any], *,
                        settle: bool = True) -> Any:
        """Await one attempt, telling the health board how it went (a stream tells it
        when it ends: ``settle`` false)."""
        self._health.begin(model.name)
        started = time.perf_counter()
        try:
            result = await attempt
        except GatewayError as error:
            self._provider_failed(model, error, _ms_since(started))
            raise
        finally:
            state.provider_ms += _ms_since(started)
        state.first_ms = _ms_since(started)
        if settle:
            self._health.success(model.name, latency_ms=state.first_ms)
        return result

    def _provider_failed(self, model: ModelRecord, error: GatewayError,
                         latency_ms: float | None) -> None:
        """A failure that is the provider's counts against its health (a limit it broke is
        also counted by kind); the gateway's own load shedding does not."""
        if isinstance(error, Overloaded):
            if error.scope == "pool":
                self._observer.shed("pool")
            return
        TRIMMER.trim_soon()  # what the failed exchange held, once its frames are gone
        if isinstance(error, UpstreamViolation | UpstreamTimeout):
            self._observer.violation(model.name, error.kind if isinstance(
                error, UpstreamViolation) else "timeout")
        if error.retryable:
            self._health.failure(model.name, latency_ms=latency_ms)

    async def _hedged(self, state: _Call, call: GenerateCall, after: float) -> Answer:
        """Ask the first candidate; if it has not answered in time (or failed
        retryably), ask the second too; the first answer wins, the other is cancelled."""
        first, second = state.plan.models[:2]

        async def attempt(model: ModelRecord) -> tuple[ModelRecord, Answer]:
            budget = _budget(model, call, state)
            self._take(model)
            try:
                return model, await self._observed(state, model,
                                                   self._unary_attempt(model, state, budget))
            finally:
                self._in_flight.give(model.name)

        tasks = [asyncio.create_task(attempt(first))]
        errors: list[GatewayError] = []
        try:  # from here on, even a cancelled call cancels and reaps its attempts
            done, _ = await asyncio.wait(tasks, timeout=after)
            error = tasks[0].exception() if done else None
            failed = isinstance(error, GatewayError) and error.retryable
            if not done or failed:
                tasks.append(asyncio.create_task(attempt(second)))
            state.attempts, state.model = len(tasks), first
            for finished in asyncio.as_completed(tasks):
                try:
                    state.model, answer = await finished
                    return answer  # noqa: TRY300
                except GatewayError as error:
                    errors.append(error)
            raise errors[-1]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _unary_attempt(self, model: ModelRecord, state: _Call, budget: float) -> Answer:
        call = state.call
        async with _Deadline(model, budget):
            return await self._providers.generate(
                model, input=call.input, parameters=call.parameters,
                first_byte_timeout=min(budget, model.first_byte_timeout_ms / 1000),
                idempotency_key=state.id)

    async def _stream_attempt(self, model: ModelRecord, state: _Call,
                              budget: float) -> tuple[AsyncGenerator[StreamEvent], StreamEvent]:
        """Open the provider's stream and wait for its first event (time to first token)."""
        call = state.call
        first_byte = min(budget, model.first_byte_timeout_ms / 1000)
        events = self._providers.stream(model, input=call.input, parameters=call.parameters,
                                        first_byte_timeout=first_byte,
                                        idempotency_key=state.id)
        try:
            async with _Deadline(model, first_byte, what="sent a first token"):
                first = await anext(events)
        except BaseException:
            await events.aclose()
            raise
        return events, first

    async def _relay(self, state: _Call, call: GenerateCall, events: AsyncGenerator[StreamEvent],
                     event: StreamEvent, emit: Emit) -> Done:
        model = state.model
        assert model is not None
        progress = Progress(model, state.attempts, state.plan.reason, state.id)
        try:
            async with _Deadline(model, _budget(model, call, state)):
                while not isinstance(event, Done):
                    if isinstance(event, Delta):
                        state.text.append(event.text)
                    else:
                        state.output = event.value
                    await emit(progress, event)
                    event = await anext(events)
        except StopAsyncIteration as exc:  # the provider client raises first; fakes may not
            error = UpstreamError("the provider's stream ended before it said done")
            self._provider_failed(model, error, None)
            raise error from exc
        except GatewayError as error:
            self._provider_failed(model, error, None)
            raise
        except BaseException:  # the caller left: the provider did nothing wrong
            self._health.success(model.name, latency_ms=state.first_ms)
            raise
        finally:
            await events.aclose()
        self._health.success(model.name, latency_ms=state.first_ms)
        return event

    # -- accounting ----------------------------------------------------------------------

    def _outcome(self, state: _Call, tokens: TokenCount, finish_reason: str = "") -> Outcome:
        assert state.model is not None
        cost = self.account(state, tokens, "ok", "")
        headers = state.admission.headers() if state.admission else {}
        return Outcome(id=state.id, model=state.model, rate_limits=headers,
                       output=state.output if state.output is not None else "".join(state.text),
                       tokens=tokens, latency_ms=state.elapsed_ms(), ttft_ms=state.ttft_ms,
                       cost_nanos=cost, attempts=state.attempts, route=state.plan.reason,
                       overhead_ms=state.overhead_ms(), finish_reason=finish_reason)

    def account(self, state: _Call, tokens: TokenCount, outcome: str, error_type: str) -> int:
        """Record the call's one usage event; the cost in nano-dollars."""
        model = state.model or state.plan.models[0]
        cost = call_cost_nanos(input_tokens=tokens.input_tokens,
                               output_tokens=tokens.output_tokens,
                               input_per_1k=model.input_price_nanos,
                               output_per_1k=model.output_price_nanos,
                               per_request=model.request_price_nanos if outcome == "ok" else 0)
        self._ledger.record(UsageEvent(
            id=state.id, ts_ms=now_ms(), key_id=state.caller.id, model=model.name,
            model_owner=model.owner, input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens, estimated=tokens.estimated, cost_nanos=cost,
            latency_ms=state.elapsed_ms(), ttft_ms=state.ttft_ms, outcome=outcome,
            error_type=error_type))
        state.tokens_used = tokens.input_tokens + tokens.output_tokens
        state.cost_nanos = cost
        self._observer.ended(CallReport(
            method=state.method, request_id=state.call.request_id,
            requested_model=state.call.model, model=model.name, model_type=model.type,
            outcome=outcome, error_type=error_type, input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens, cost_usd=nanos_to_usd(cost),
            latency_ms=_ms_since(state.started), ttft_ms=state.ttft_ms,
            overhead_ms=state.overhead_ms(), attempts=state.attempts,
            strategy="" if state.call.model else state.call.route.strategy,
            parameters=state.call.parameters), state.span)
        return cost


class _Admitted:
    """A call inside its rate limits and budget: the worst case is reserved on entry and
    settled on exit to what was accounted; a call that fails or is cancelled is accounted
    here, billed for what was delivered."""

    __slots__ = ("_generator", "_state")

    def __init__(self, generator: Generator, state: _Call) -> None:
        self._generator = generator
        self._state = state

    async def __aenter__(self) -> None:
        state, call = self._state, self._state.call
        if not state.caller.limited:
            return  # nothing to reserve, nothing to settle
        max_tokens = int(call.parameters.get("max_tokens") or DEFAULT_MAX_TOKENS)
        input_tokens = estimate_tokens(call.input)
        worst = max(call_cost_nanos(input_tokens=input_tokens, output_tokens=max_tokens,
                                    input_per_1k=m.input_price_nanos,
                                    output_per_1k=m.output_price_nanos,
                                    per_request=m.request_price_nanos)
                    for m in state.plan.models[:MAX_ATTEMPTS])
        state.admission = await self._generator._quota.admit(
            state.caller, reserve_tokens=input_tokens + max_tokens, reserve_nanos=worst)

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        _tb: object) -> None:
        state = self._state
        try:
            if kind is not None:
                self._account_failure(error)
        finally:
            if state.admission is not None:
                await self._generator._quota.settle(state.admission, tokens=state.tokens_used,
                                                    cost_nanos=state.cost_nanos)

    def _account_failure(self, error: BaseException | None) -> None:
        state = self._state
        delivered = state.text or state.output is not None
        tokens = state.delivered(None) if delivered else TokenCount(0, 0, False)
        if isinstance(error, GatewayError):
            outcome = "timeout" if isinstance(error, UpstreamTimeout) else "error"
            self._generator.account(state, tokens, outcome, error.reason)
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            self._generator.account(state, tokens, "cancelled", "CANCELLED")
        else:
            self._generator.account(state, tokens, "error", "INTERNAL")


class _Deadline(deadline):
    """A provider's deadline, whose expiry is an UpstreamTimeout naming the model."""

    __slots__ = ("_model", "_what")

    def __init__(self, model: ModelRecord, seconds: float, what: str = "answered") -> None:
        super().__init__(seconds)
        self._model = model
        self._what = what

    def timed_out(self) -> BaseException:
        return UpstreamTimeout(f"model {self._model.name!r} has not {self._what} within "
                               f"{round((self.seconds or 0) * 1000)} ms")


def _budget(model: ModelRecord, call: GenerateCall, state: _Call) -> float:
    """Seconds left for the provider: its timeout, within the caller's deadline."""
    budget = model.timeout_ms / 1000 - (time.perf_counter() - state.started) \
        if state.ttft_ms else model.timeout_ms / 1000
    if call.time_remaining is not None:
        budget = min(budget, call.time_remaining - (time.perf_counter() - state.started))
    if budget <= 0:
        raise UpstreamTimeout("the deadline passed before the provider could answer")
    return budget


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000

