"""GenerateService: unary and streaming calls into the Generator."""

from __future__ import annotations

from typing import Any

import orjson
from grpc import aio

from ai1net.client.convert import python_to_value, struct_to_dict, whole_numbers
from ai1net.server.auth import current_principal, current_request_id
from ai1net.server.calls import GenerateCall, Outcome, Progress
from ai1net.server.errors import InvalidArgument
from ai1net.server.generate import Generator
from ai1net.server.money import nanos_to_usd
from ai1net.server.providers import Delta, Output
from ai1net.server.routing import RouteRequest
from ai1net.v1 import generate_pb2, generate_pb2_grpc

Context = aio.ServicerContext[Any, Any]
DEFAULT_ROUTE = RouteRequest()


class GenerateServicer(generate_pb2_grpc.GenerateServiceServicer):
    def __init__(self, *, generator: Generator) -> None:
        self._generator = generator

    async def Generate(self, request: generate_pb2.GenerateRequest,
                       context: Context) -> generate_pb2.GenerateResponse:
        outcome = await self._generator.generate(current_principal(), to_call(request, context))
        context.set_trailing_metadata(trailers(outcome))
        response = generate_pb2.GenerateResponse(**summary(outcome))
        python_to_value(outcome.output, response.output)
        return response

    async def GenerateStream(  # type: ignore[override]  # streams with context.write
        self, request: generate_pb2.GenerateRequest, context: Context,
    ) -> None:
        started = False

        async def emit(progress: Progress, event: Delta | Output) -> None:
            nonlocal started
            if not started:
                started = True
                await context.send_initial_metadata(
                    (("x-ai1net-model", progress.model.name),
                     ("x-ai1net-attempts", str(progress.attempts)),
                     ("x-ai1net-route", progress.route),
                     ("x-ai1net-generation-id", progress.id)))
            message = generate_pb2.GenerateStreamResponse()
            if isinstance(event, Delta):
                message.delta = event.text
            else:
                python_to_value(event.value, message.output)
            await context.write(message)

        outcome = await self._generator.stream(current_principal(), to_call(request, context),
                                               emit)
        context.set_trailing_metadata(trailers(outcome))
        await context.write(generate_pb2.GenerateStreamResponse(done=True, **summary(outcome)))


def to_call(request: generate_pb2.GenerateRequest, context: Context) -> GenerateCall:
    routing = request.routing if request.HasField("routing") else None
    return GenerateCall(input=request.input, model=request.model,
                        parameters=parameters(request),
                        route=to_route(routing) if routing is not None else DEFAULT_ROUTE,
                        fallbacks=tuple(request.fallbacks),
                        time_remaining=context.time_remaining(),
                        hedge_ms=routing.hedge_ms
                        if routing is not None and routing.HasField("hedge_ms") else None,
                        request_id=current_request_id())


def parameters(request: generate_pb2.GenerateRequest) -> dict[str, Any]:
    """The call's parameters, from ``parameters_json`` or the ``parameters`` Struct."""
    if not request.parameters_json:
        return struct_to_dict(request.parameters) if request.HasField("parameters") else {}
    if request.HasField("parameters"):
        raise InvalidArgument("parameters", "send parameters or parameters_json, not both")
    try:
        value = orjson.loads(request.parameters_json)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidArgument("parameters_json", "must be a JSON object in UTF-8")
    try:
        return whole_numbers(value)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise InvalidArgument("parameters", str(exc)) from None


def to_route(routing: generate_pb2.Routing) -> RouteRequest:
    return RouteRequest(
        type=routing.type or "text", capabilities=tuple(routing.capabilities),
        specialties=tuple(routing.specialties), strategy=routing.strategy or "balanced",
        max_latency_ms=routing.max_latency_ms if routing.HasField("max_latency_ms") else None,
        max_price_per_1k_tokens=routing.max_price_per_1k_tokens
        if routing.HasField("max_price_per_1k_tokens") else None)


def summary(outcome: Outcome) -> dict[str, Any]:
    """The fields a unary answer and a stream's final message share."""
    fields = {"id": outcome.id, "model": outcome.model.name,
              "usage": generate_pb2.Usage(input_tokens=outcome.tokens.input_tokens,
                                          output_tokens=outcome.tokens.output_tokens,
                                          estimated=outcome.tokens.estimated),
              "latency_ms": outcome.latency_ms, "cost_usd": nanos_to_usd(outcome.cost_nanos),
              "cost_nanos": outcome.cost_nanos, "ttft_ms": outcome.ttft_ms,
              "attempts": outcome.attempts, "route": outcome.route}
    if outcome.finish_reason:  # rarely said: unset, it costs the answer nothing
        fields["finish_reason"] = outcome.finish_reason
    return fields


def trailers(outcome: Outcome) -> tuple[tuple[str, str], ...]:
    return (("x-ai1net-model", outcome.model.name),
            ("x-ai1net-attempts", str(outcome.attempts)),
            ("x-ai1net-route", outcome.route),
            ("x-ai1net-overhead-ms", f"{outcome.overhead_ms:.3f}"), *outcome.rate_limits.items())
