"""The Python client's own behaviour, against grpc_testing's fake channel: what it sends,
how replies become typed results, how the gateway's errors become typed exceptions (the
trailers are made by the server's own ``to_status``), and when it retries."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import empty_pb2, timestamp_pb2
from google.protobuf.message import Message

import ai1net.client as client_package
from ai1net.client import (
    UNSET,
    Ai1netError,
    AlreadyExists,
    AuthenticationError,
    BudgetExceeded,
    Cancelled,
    Client,
    DeadlineExceeded,
    Delta,
    Done,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Output,
    PermissionDenied,
    RateLimit,
    RateLimited,
    RetryPolicy,
    Unavailable,
    UpstreamError,
)
from ai1net.client import sync as sync_module
from ai1net.server import errors as server_errors
from ai1net.v1 import generate_pb2, keys_pb2, registry_pb2, usage_pb2

SERVICES = [module.DESCRIPTOR.services_by_name[name] for module, name in (
    (generate_pb2, "GenerateService"), (registry_pb2, "RegistryService"),
    (keys_pb2, "KeyService"), (usage_pb2, "UsageService"))]
METHODS = {method.name: method for service in SERVICES for method in service.methods}


class FakeGateway:
    """grpc_testing's channel, with the client calling from a thread and the test answering."""

    def __init__(self) -> None:
        self.channel = grpc_testing.channel(SERVICES, grpc_testing.strict_real_time())
        self.pool = ThreadPoolExecutor(1)

    def call(self, action: Callable[[], Any]) -> Future[Any]:
        return self.pool.submit(action)

    def answer(self, method: str, reply: Message | None = None, *,
               error: server_errors.GatewayError | None = None,
               code: grpc.StatusCode = grpc.StatusCode.OK, details: str = "",
               trailers: tuple[tuple[str, Any], ...] = ()) -> tuple[Any, Message]:
        """Take the client's next ``method`` call and end it; its metadata and request."""
        metadata, request, rpc = self.channel.take_unary_unary(METHODS[method])
        if error is not None:
            code, details, trailers = server_errors.to_status(error)
        rpc.terminate(reply or empty_pb2.Empty(), trailers, code, details)
        return metadata, request

    def stream(self, replies: list[Message]) -> Message:
        """Take the client's next GenerateStream call and answer it with ``replies``."""
        _metadata, request, rpc = self.channel.take_unary_stream(METHODS["GenerateStream"])
        for reply in replies:
            rpc.send_response(reply)
        rpc.terminate((), grpc.StatusCode.OK, "")
        return request


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    fake = FakeGateway()
    yield fake
    fake.pool.shutdown(wait=False, cancel_futures=True)


class SleepRecorder(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    """The waits between retries, recorded instead of slept."""
    recorder = SleepRecorder()
    monkeypatch.setattr(sync_module, "sleep", recorder)
    return recorder


def client_for(gateway: FakeGateway, **options: Any) -> Client:
    return Client(channel=gateway.channel, api_key="ai1_test-key", **options)


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(moment)
    return out


# -- the public surface ---------------------------------------------------------------------


def test_the_public_names_are_pinned():
    assert sorted(client_package.__all__) == [
        "Ai1netError", "AlreadyExists", "AsyncClient", "AuthenticationError", "BudgetExceeded",
        "Cancelled", "Client", "DeadlineExceeded", "Delta", "Done", "FailedPrecondition",
        "Generation", "InvalidArgument", "Key", "Model", "ModelStats", "NotFound", "Outcome",
        "Output", "Performance", "PermissionDenied", "Pricing", "RateLimit", "RateLimited",
        "Reconciliation", "RetryPolicy", "StreamEvent", "TokenUsage", "UNSET", "Unavailable",
        "UpstreamError", "UsageCounts", "UsageGroup", "UsageSummary", "UsageTotals",
        "__version__"]
    for name in client_package.__all__:
        assert getattr(client_package, name) is not None


def test_every_error_is_an_ai1net_error():
    for name in client_package.__all__:
        value = getattr(client_package, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, Ai1netError)


# -- requests -------------------------------------------------------------------------------


def test_generate_sends_the_key_the_model_parameters_routing_and_fallbacks(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate(
        "Hello", model="m", parameters={"max_tokens": 40, "temperature": 0.5},
        routing={"strategy": "cost", "capabilities": ["coding"], "max_latency_ms": 900},
        fallbacks=["b", "c"]))
    metadata, request = gateway.answer("Generate", generate_pb2.GenerateResponse(id="gen_1"))
    future.result()
    assert ("authorization", "Bearer ai1_test-key") in metadata
    assert request.model == "m"
    assert request.input == "Hello"
    assert dict(request.parameters) == {"max_tokens": 40, "temperature": 0.5}
    assert request.routing.strategy == "cost"
    assert list(request.routing.capabilities) == ["coding"]
    assert request.routing.max_latency_ms == 900
    assert list(request.fallbacks) == ["b", "c"]


def test_a_routing_field_that_does_not_exist_is_refused_before_any_call():
    client = Client(channel=grpc_testing.channel(SERVICES, grpc_testing.strict_real_time()),
                    api_key="k")
    with pytest.raises(InvalidArgument) as caught:
        client.generate("hi", routing={"stratgy": "cost"})
    assert caught.value.field == "routing"
    assert "stratgy" in caught.value.message


def test_update_model_names_only_the_fields_given(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.update_model("m", {
        "pricing": {"output_per_1k_tokens": 0.004}, "credentials": {"api_key": "sk-new"},
        "enabled": False}))
    _, request = gateway.answer("UpdateModel", registry_pb2.Model(name="m"))
    future.result()
    assert request.name == "m"
    assert list(request.update_mask.paths) == [
        "pricing.output_per_1k_tokens", "credentials", "enabled"]
    assert request.model.pricing.output_per_1k_tokens == 0.004
    assert dict(request.model.credentials) == {"api_key": "sk-new"}
    assert request.model.HasField("enabled")
    assert not request.model.enabled


@pytest.mark.parametrize(("arguments", "paths", "budget"), [
    ({"name": "renamed"}, ["name"], None),
    ({"rate_limit": RateLimit(60, 1000)}, ["rate_limit"], None),
    ({"budget_usd": 2.5}, ["budget_usd"], 2.5),
    ({"budget_usd": None}, ["budget_usd"], None),   # removes the budget
    ({"budget_usd": UNSET}, [], None),              # leaves it
])
def test_update_key_masks_what_it_changes(gateway, arguments, paths, budget):
    client = client_for(gateway)
    future = gateway.call(lambda: client.update_key("key_1", **arguments))
    _, request = gateway.answer("UpdateKey", keys_pb2.Key(id="key_1"))
    future.result()
    assert list(request.update_mask.paths) == paths
    assert (request.budget_usd if request.HasField("budget_usd") else None) == budget
    if "rate_limit" in arguments:
        assert request.rate_limit.requests_per_minute == 60
        assert request.rate_limit.tokens_per_minute == 1000


def test_usage_periods_go_as_rfc3339(gateway):
    client = client_for(gateway)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    future = gateway.call(lambda: client.usage(model="m", group_by="day", start=start,
                                               end="2026-02-01T00:00:00Z"))
    _, request = gateway.answer("GetUsage", usage_pb2.GetUsageResponse())
    future.result()
    assert getattr(request, "from") == "2026-01-01T00:00:00+00:00"
    assert request.to == "2026-02-01T00:00:00Z"
    assert request.group_by == "day"
    with pytest.raises(ValueError, match="timezone-aware"):
        client.usage(start=datetime(2026, 1, 1))


def test_list_models_follows_the_pages(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.list_models(type="text"))
    _, first = gateway.answer("ListModels", registry_pb2.ListModelsResponse(
        models=[registry_pb2.Model(name="a")], next_page_token="p2"))
    _, second = gateway.answer("ListModels", registry_pb2.ListModelsResponse(
        models=[registry_pb2.Model(name="b")]))
    assert [m.name for m in future.result()] == ["a", "b"]
    assert (first.page_token, second.page_token) == ("", "p2")
    assert first.type == second.type == "text"


# -- typed results --------------------------------------------------------------------------


def test_a_generation_has_whole_numbers_and_exact_money(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("hi", model="m"))
    reply = generate_pb2.GenerateResponse(
        id="gen_1", model="m", usage=generate_pb2.Usage(input_tokens=8, output_tokens=120),
        latency_ms=320, cost_usd=0.000496, cost_nanos=496_000, ttft_ms=12, attempts=2,
        route="balanced")
    reply.output.string_value = "Quantum computing is"
    gateway.answer("Generate", reply)
    answer = future.result()
    assert answer.output == "Quantum computing is"
    assert answer.usage.input_tokens == 8
    assert answer.usage.total_tokens == 128
    assert not answer.usage.estimated
    assert answer.cost_nanos == 496_000
    assert answer.cost_usd == 0.000496
    assert (answer.latency_ms, answer.ttft_ms, answer.attempts) == (320, 12, 2)


def test_an_image_output_is_a_dict(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("a cat", model="img"))
    reply = generate_pb2.GenerateResponse(id="gen_2")
    reply.output.struct_value.update({"image_url": "https://img.example/1.png"})
    gateway.answer("Generate", reply)
    assert future.result().output == {"image_url": "https://img.example/1.png"}


def test_a_stream_is_deltas_then_done(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: list(client.generate_stream("hi", model="m")))
    image = generate_pb2.GenerateStreamResponse()
    image.output.struct_value.update({"audio_url": "https://a.example/1.wav"})
    gateway.stream([
        generate_pb2.GenerateStreamResponse(delta="Hel"),
        generate_pb2.GenerateStreamResponse(delta="lo"),
        image,
        generate_pb2.GenerateStreamResponse(
            done=True, id="gen_3", model="m", cost_nanos=7,
            usage=generate_pb2.Usage(input_tokens=2, output_tokens=3, estimated=True))])
    events = future.result()
    assert events[:3] == [Delta("Hel"), Delta("lo"), Output({"audio_url": "https://a.example/1.wav"})]
    done = events[3]
    assert isinstance(done, Done)
    assert (done.id, done.cost_nanos, done.usage.output_tokens, done.usage.estimated) == \
        ("gen_3", 7, 3, True)


def test_a_failure_after_the_first_delta_ends_the_stream_with_its_typed_error(gateway):
    client = client_for(gateway)
    seen: list[Any] = []
    first = threading.Event()

    def consume() -> None:
        for event in client.generate_stream("hi", model="m"):
            seen.append(event)
            first.set()

    future = gateway.call(consume)
    _metadata, _request, rpc = gateway.channel.take_unary_stream(METHODS["GenerateStream"])
    rpc.send_response(generate_pb2.GenerateStreamResponse(delta="partial"))
    first.wait()
    code, details, trailers = server_errors.to_status(
        server_errors.UpstreamError("provider stream ended before done"))
    rpc.terminate(trailers, code, details)
    with pytest.raises(UpstreamError, match="ended before done"):
        future.result()
    assert seen == [Delta("partial")]


def test_a_model_converts_prices_times_and_stats(gateway):
    client = client_for(gateway)
    created = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    future = gateway.call(lambda: client.get_model("m"))
    gateway.answer("GetModel", registry_pb2.Model(
        name="m", type="text", pricing=registry_pb2.Pricing(input_per_1k_tokens=0.002,
                                                            output_per_1k_tokens=0.00001),
        capabilities=["chat"], owner="key_p", enabled=True, created_at=stamp(created),
        stats=registry_pb2.ModelStats(requests=2**40, error_rate=0.25, health="healthy"),
        timeout_ms=60000, has_credentials=True, max_response_bytes=16 << 20,
        max_concurrency=256))
    model = future.result()
    assert model.pricing.input_per_1k_nanos == 2_000_000
    assert model.pricing.output_per_1k_nanos == 10_000
    assert model.pricing.input_per_1k_tokens == 0.002
    assert model.created_at == created
    assert model.updated_at is None
    assert model.stats.requests == 2**40
    assert isinstance(model.stats.requests, int)
    assert model.capabilities == ("chat",)
    assert (model.timeout_ms, model.has_credentials, model.extra) == (60000, True, {})
    assert (model.max_response_bytes, model.max_event_bytes, model.max_concurrency) == \
        (16 << 20, 0, 256)


def test_a_key_keeps_its_secret_only_when_created_and_its_budget_in_nanos(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.create_key("consumer", name="alice",
                                                    rate_limit=RateLimit(600, 100_000),
                                                    budget_usd=10.0))
    _, request = gateway.answer("CreateKey", keys_pb2.Key(
        id="key_1", key="ai1_secret", role="consumer", budget_usd=10.0,
        rate_limit=keys_pb2.RateLimit(requests_per_minute=600, tokens_per_minute=100_000)))
    key = future.result()
    assert (request.role, request.name, request.budget_usd) == ("consumer", "alice", 10.0)
    assert request.rate_limit.tokens_per_minute == 100_000
    assert key.key == "ai1_secret"
    assert key.budget_nanos == 10_000_000_000
    assert key.budget_usd == 10.0
    assert key.rate_limit == RateLimit(600, 100_000)

    future = gateway.call(lambda: client.list_keys(include_revoked=True))
    _, request = gateway.answer("ListKeys", keys_pb2.ListKeysResponse(
        keys=[keys_pb2.Key(id="key_1", role="consumer")]))
    [listed] = future.result()
    assert request.include_revoked
    assert (listed.key, listed.budget_nanos, listed.budget_usd) == (None, None, None)


def test_usage_and_reconciliation_are_integers(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.usage(group_by="model"))
    totals = usage_pb2.UsageTotals(requests=1200, tokens_processed=850_000, input_tokens=350_000,
                                   output_tokens=500_000, errors=3, cost_usd=2.7,
                                   cost_nanos=2_700_000_000)
    gateway.answer("GetUsage", usage_pb2.GetUsageResponse(
        usage=totals, groups=[usage_pb2.UsageGroup(group="m", usage=totals)]))
    summary = future.result()
    assert summary.usage.requests == 1200
    assert summary.usage.cost_nanos == 2_700_000_000
    assert summary.usage.cost_usd == 2.7
    assert summary.groups[0].group == "m"

    future = gateway.call(lambda: client.reconciliation("m"))
    gateway.answer("GetReconciliation", usage_pb2.GetReconciliationResponse(
        model="m", gateway=usage_pb2.UsageCounts(requests=10, tokens_processed=100),
        provider=usage_pb2.UsageCounts(requests=12, tokens_processed=90),
        difference=usage_pb2.UsageCounts(requests=2, tokens_processed=-10),
        to="2026-02-01T00:00:00Z", **{"from": "2026-01-01T00:00:00Z"}))
    result = future.result()
    assert result.difference.tokens_processed == -10
    assert result.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert result.end == datetime(2026, 2, 1, tzinfo=UTC)


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "kind", "reason"), [
    (server_errors.Unauthenticated("missing API key"), AuthenticationError, "UNAUTHENTICATED"),
    (server_errors.PermissionDenied("not your model"), PermissionDenied, "PERMISSION_DENIED"),
    (server_errors.NotFound("no model 'x'"), NotFound, "NOT_FOUND"),
    (server_errors.AlreadyExists("name taken"), AlreadyExists, "ALREADY_EXISTS"),
    (server_errors.ProviderRejected("bad size"), InvalidArgument, "PROVIDER_REJECTED"),
    (server_errors.NoCandidate("no model matches"), FailedPrecondition, "NO_CANDIDATE"),
    (server_errors.BudgetExceeded("budget spent"), BudgetExceeded, "BUDGET_EXCEEDED"),
    (server_errors.UpstreamError("provider 500"), UpstreamError, "UPSTREAM_ERROR"),
    (server_errors.UpstreamTimeout("no answer"), DeadlineExceeded, "UPSTREAM_TIMEOUT"),
    (server_errors.UpstreamViolation("answer over max_response_bytes", kind="body"),
     UpstreamError, "UPSTREAM_ERROR"),
    (server_errors.Unavailable("draining"), Unavailable, "UNAVAILABLE"),
    (server_errors.Overloaded("model at max_concurrency", scope="model"), Unavailable,
     "OVERLOADED"),
    (server_errors.Cancelled("client left"), Cancelled, "CANCELLED"),
])
def test_each_gateway_error_becomes_its_typed_exception(gateway, error, kind, reason):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("hi", model="m"))
    gateway.answer("Generate", error=error)
    with pytest.raises(kind) as caught:
        future.result()
    assert type(caught.value) is kind
    assert caught.value.reason == reason
    assert caught.value.code == error.code
    assert caught.value.message == error.message


def test_invalid_argument_names_the_field(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("hi", model="m",
                                                  parameters={"temperature": 5}))
    gateway.answer("Generate", error=server_errors.InvalidArgument(
        "parameters.temperature", "must be a number in [0, 2]"))
    with pytest.raises(InvalidArgument) as caught:
        future.result()
    assert caught.value.field == "parameters.temperature"


@pytest.mark.parametrize("error", [
    server_errors.RateLimited("slow down", retry_after_s=2.2),
    server_errors.UpstreamRateLimited("provider says slow down", retry_after_s=7),
])
def test_rate_limited_carries_retry_after(gateway, error):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("hi", model="m"))
    gateway.answer("Generate", error=error)
    with pytest.raises(RateLimited) as caught:
        future.result()
    assert caught.value.retry_after == math.ceil(error.retry_after_s)  # whole seconds


@pytest.mark.parametrize("trailers", [(), (("grpc-status-details-bin", b"\xff\xfe not a status"),)])
def test_a_status_without_readable_details_still_maps_by_code(gateway, trailers):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("hi", model="m"))
    gateway.answer("Generate", code=grpc.StatusCode.PERMISSION_DENIED, details="no",
                   trailers=trailers)
    with pytest.raises(PermissionDenied) as caught:
        future.result()
    assert caught.value.reason == ""
    assert caught.value.retry_after is None


def test_an_unmapped_code_is_the_base_error(gateway):
    client = client_for(gateway)
    future = gateway.call(lambda: client.generate("hi", model="m"))
    gateway.answer("Generate", code=grpc.StatusCode.INTERNAL, details="boom")
    with pytest.raises(Ai1netError) as caught:
        future.result()
    assert type(caught.value) is Ai1netError
    assert caught.value.code == grpc.StatusCode.INTERNAL


# -- retries --------------------------------------------------------------------------------


def test_a_read_is_retried_after_the_delay_retry_info_asks_for(gateway, sleeps):
    client = client_for(gateway)
    future = gateway.call(lambda: client.get_model("m"))
    gateway.answer("GetModel", error=server_errors.RateLimited("slow down", retry_after_s=3))
    gateway.answer("GetModel", registry_pb2.Model(name="m"))
    assert future.result().name == "m"
    assert sleeps == [3.0]


def test_a_read_the_gateway_shed_is_retried_when_it_says(gateway, sleeps):
    client = client_for(gateway)
    future = gateway.call(lambda: client.usage())
    gateway.answer("GetUsage", error=server_errors.Overloaded("at the in-flight limit",
                                                              scope="process"))
    gateway.answer("GetUsage", usage_pb2.GetUsageResponse())
    assert future.result().usage.requests == 0
    assert sleeps == [1.0]


def test_an_unavailable_read_backs_off_exponentially_then_gives_up(gateway, sleeps):
    client = client_for(gateway, retry=RetryPolicy(max_attempts=4, initial_backoff=0.5,
                                                   max_backoff=1.5, rng=Ceiling()))
    future = gateway.call(lambda: client.list_keys())
    for _ in range(4):
        gateway.answer("ListKeys", code=grpc.StatusCode.UNAVAILABLE, details="connect failed")
    with pytest.raises(Unavailable):
        future.result()
    assert sleeps == [0.5, 1.0, 1.5]


@pytest.mark.parametrize("method", ["Generate", "CreateKey"])
def test_calls_that_are_not_reads_are_never_retried(gateway, sleeps, method):
    client = client_for(gateway)
    action = {"Generate": lambda: client.generate("hi", model="m"),
              "CreateKey": lambda: client.create_key("consumer")}[method]
    future = gateway.call(action)
    gateway.answer(method, error=server_errors.Unavailable("draining"))
    with pytest.raises(Unavailable):
        future.result(timeout=10)  # a retry would wait for a second answer that never comes
    assert sleeps == []


@pytest.mark.parametrize("error", [
    server_errors.BudgetExceeded("spent"),
    server_errors.NotFound("no such model"),
    server_errors.RateLimited("come back tomorrow", retry_after_s=3600),
])
def test_a_read_failing_for_good_is_not_retried(gateway, sleeps, error):
    client = client_for(gateway)
    future = gateway.call(lambda: client.get_model("m"))
    gateway.answer("GetModel", error=error)
    with pytest.raises(Ai1netError):
        future.result(timeout=10)
    assert sleeps == []


class Ceiling(random.Random):
    """Jitter that always picks the top of its range."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_retry_policy_jitters_below_the_exponential_ceiling():
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=1.0,
                         rng=random.Random(7))
    error = Unavailable("down")
    for attempt in range(8):
        ceiling = min(1.0, 0.1 * 2 ** attempt)
        delay = policy.delay(attempt, error)
        assert delay is not None
        assert 0 <= delay <= ceiling


def test_retry_policy_never_waits_past_the_deadline():
    policy = RetryPolicy(rng=Ceiling())
    assert policy.delay(0, Unavailable("down"), remaining=0.05) is None
    assert policy.delay(0, Unavailable("down"), remaining=0.5) == 0.1
    assert policy.delay(0, RateLimited("slow", retry_after=2.0), remaining=1.0) is None
    assert policy.delay(3, Unavailable("down")) is None  # the fourth attempt was the last


def test_retry_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(initial_backoff=2, max_backoff=1)


# -- construction ---------------------------------------------------------------------------


def test_construction_refuses_contradictions(tmp_path):
    channel = grpc_testing.channel(SERVICES, grpc_testing.strict_real_time())
    with pytest.raises(ValueError, match="either a channel"):
        Client("127.0.0.1:1", channel=channel, api_key="k")
    with pytest.raises(ValueError, match="api_key"):
        Client(api_key="")
    with pytest.raises(ValueError, match="go together"):
        Client(api_key="k", cert_file=tmp_path / "client.pem")
    with pytest.raises(FileNotFoundError):
        Client(api_key="k", ca_file=tmp_path / "missing.pem")


def test_fields_the_client_does_not_know_yet_land_in_extra():
    from ai1net.client import results

    created = datetime(2026, 3, 1, tzinfo=UTC)
    message = registry_pb2.Model(name="m", capabilities=["chat"], max_concurrency=4,
                                 stats=registry_pb2.ModelStats(requests=2**40),
                                 created_at=stamp(created))
    assert results._extra(message, frozenset({"name"})) == {
        "capabilities": ["chat"], "max_concurrency": 4, "stats": {"requests": 2**40},
        "created_at": created}
