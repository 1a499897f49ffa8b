"""The Python client, sync and asyncio, against a real gateway and a real provider process;
and over TLS against a real gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from ai1net.client import (
    AsyncClient,
    AuthenticationError,
    BudgetExceeded,
    Client,
    DeadlineExceeded,
    Delta,
    Done,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimit,
    RateLimited,
    RetryPolicy,
    Unavailable,
    UpstreamError,
    UsageCounts,
)
from ai1net.v1 import registry_pb2, registry_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, gateway_settings, run_harness
from tests.integration.test_streaming import events, next_event
from tests.support.certs import self_signed

PRICING = {"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004}
# The scripted provider's /ok answers 3 input and 5 output tokens.
CALL_NANOS = math.ceil((3 * 2_000_000 + 5 * 4_000_000) / 1000)


@pytest.fixture
async def gateway(sqlite_url: str) -> AsyncIterator[Harness]:
    async for running in run_harness(gateway_settings(sqlite_url)):
        yield running


def model_spec(name: str, endpoint: str) -> dict[str, Any]:
    return {"name": name, "type": "text", "endpoint": endpoint, "pricing": PRICING,
            "auth_type": "bearer", "credentials": {"api_key": "sk-provider-secret"},
            "capabilities": ["chat"], "specialties": ["tests"]}


# -- sync -----------------------------------------------------------------------------------


def sync_tour(target: str, provider_url: str) -> None:
    """Every part of the API once, through the blocking client."""
    with Client(target, api_key=ADMIN_KEY) as admin:
        provider = admin.create_key("provider", name="sync-provider")
        consumer = admin.create_key("consumer", name="sync-consumer",
                                    rate_limit=RateLimit(600, 100_000), budget_usd=5.0)
        assert provider.key
        assert consumer.key
        assert consumer.budget_nanos == 5_000_000_000
        assert consumer.rate_limit == RateLimit(600, 100_000)

    with Client(target, api_key=provider.key) as owner:
        model = owner.register_model({**model_spec("sync-model", provider_url + "/ok"),
                                      "health_url": provider_url + "/health/200"})
        assert (model.owner, model.has_credentials) == (provider.id, True)
        assert model.health_url == provider_url + "/health/200"
        assert model.pricing.input_per_1k_nanos == 2_000_000
        assert model.created_at is not None
        assert model.created_at.tzinfo is not None
        assert model.max_response_bytes == 16 << 20  # the default
        assert model.extra == {}                     # nothing this client does not know

    with Client(target, api_key=consumer.key) as client:
        answer = client.generate("hello", model="sync-model", parameters={"max_tokens": 5})
        assert answer.output == "ok: hello"
        assert (answer.usage.input_tokens, answer.usage.output_tokens) == (3, 5)
        assert answer.cost_nanos == CALL_NANOS
        assert answer.cost_usd == CALL_NANOS / 1e9
        assert answer.id.startswith("gen_")

        events = list(client.generate_stream("hello", model="sync-model"))
        assert "".join(e.text for e in events if isinstance(e, Delta)) == "ok: hello"
        done = events[-1]
        assert isinstance(done, Done)
        assert (done.model, done.cost_nanos) == ("sync-model", CALL_NANOS)

        assert [m.name for m in client.list_models(capability="chat")] == ["sync-model"]
        with pytest.raises(InvalidArgument) as invalid:
            client.generate("hello", model="sync-model", parameters={"temperature": 5})
        assert invalid.value.field == "parameters.temperature"
        with pytest.raises(NotFound):
            client.get_model("no-such-model")
        with pytest.raises(PermissionDenied):
            client.register_model(model_spec("not-mine", provider_url + "/ok"))
        with pytest.raises(PermissionDenied):
            client.list_keys()

        mine = client.usage(group_by="model")
        assert mine.usage.cost_nanos == 2 * CALL_NANOS
        assert mine.usage.input_tokens == 6
        assert [g.group for g in mine.groups] == ["sync-model"]

    with Client(target, api_key=provider.key) as owner:
        changed = owner.update_model("sync-model", {"pricing": {"input_per_1k_tokens": 0.001},
                                                    "description": "cheaper"})
        assert changed.pricing.input_per_1k_nanos == 1_000_000
        assert changed.pricing.output_per_1k_nanos == 4_000_000   # untouched
        assert changed.description == "cheaper"

        earnings = owner.usage(model="sync-model")
        assert earnings.usage.cost_nanos == 2 * CALL_NANOS
        now = datetime.now(UTC)
        start, end = now - timedelta(hours=1), now + timedelta(minutes=1)
        report_id = owner.report_usage("sync-model", start=start, end=end, requests=3,
                                       tokens_processed=20)
        assert report_id
        check = owner.reconciliation("sync-model", start=start, end=end)
        assert check.gateway == UsageCounts(requests=2, tokens_processed=16)
        assert check.provider == UsageCounts(requests=3, tokens_processed=20)
        assert check.difference == UsageCounts(requests=1, tokens_processed=4)

        owner.delete_model("sync-model")
        with pytest.raises(NotFound):
            owner.generate("hello", model="sync-model")

    with Client(target, api_key=ADMIN_KEY) as admin:
        listed = {k.id: k for k in admin.list_keys()}
        assert listed[consumer.id].key is None       # the secret is shown once only
        assert listed[consumer.id].prefix
        updated = admin.update_key(consumer.id, budget_usd=None, name="renamed")
        assert (updated.budget_nanos, updated.name) == (None, "renamed")
        admin.revoke_key(consumer.id)
    with Client(target, api_key=consumer.key) as client, pytest.raises(AuthenticationError):
        client.list_models()


async def test_the_sync_client_covers_the_api(gateway: Harness, provider_url: str):
    # The gateway serves on this event loop; the blocking client runs beside it.
    await asyncio.to_thread(sync_tour, gateway.grpc_target, provider_url)


def sync_failures(target: str, provider_url: str) -> None:
    with Client(target, api_key=ADMIN_KEY) as admin:
        provider = admin.create_key("provider", name="failing-provider").key
        broke = admin.create_key("consumer", name="broke", budget_usd=CALL_NANOS / 2e9).key
        limited = admin.create_key("consumer", name="limited",
                                   rate_limit=RateLimit(requests_per_minute=1)).key
    assert provider and broke and limited
    with Client(target, api_key=provider) as owner:
        owner.register_model(model_spec("fine", provider_url + "/ok"))
        owner.register_model(model_spec("broken", provider_url + "/status/500"))
        owner.register_model(model_spec("slow", provider_url + "/slow/3000"))
    with Client(target, api_key=broke) as client, pytest.raises(BudgetExceeded):
        client.generate("hello", model="fine")
    with Client(target, api_key=limited) as client:
        client.generate("hello", model="fine")
        with pytest.raises(RateLimited) as limit:
            client.generate("hello", model="fine")
        assert limit.value.retry_after is not None
        assert limit.value.retry_after >= 1
    with Client(target, api_key=provider) as client:
        with pytest.raises(UpstreamError):
            client.generate("hello", model="broken")
        with pytest.raises(DeadlineExceeded):
            client.generate("hello", model="slow", timeout=0.3)


async def test_the_sync_client_raises_each_typed_error(gateway: Harness, provider_url: str):
    await asyncio.to_thread(sync_failures, gateway.grpc_target, provider_url)


def test_an_unreachable_gateway_is_unavailable_after_the_retries(unused_port: int):
    with Client(f"127.0.0.1:{unused_port}", api_key="k",
                retry=RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01),
                ) as client, pytest.raises(Unavailable):
        client.list_models()


@pytest.fixture
def unused_port() -> int:
    """A port nobody listens on: bound, then released."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- asyncio --------------------------------------------------------------------------------


async def test_the_async_client_covers_the_api(gateway: Harness, provider_url: str):
    target = gateway.grpc_target
    async with AsyncClient(target, api_key=ADMIN_KEY) as admin:
        provider = await admin.create_key("provider", name="async-provider")
        consumer = await admin.create_key("consumer", name="async-consumer")
        assert provider.key
        assert consumer.key
    async with AsyncClient(target, api_key=provider.key) as owner:
        model = await owner.register_model(model_spec("async-model", provider_url + "/ok"))
        assert model.owner == provider.id
        changed = await owner.update_model("async-model", {"enabled": False})
        assert not changed.enabled
        await owner.update_model("async-model", {"enabled": True})
    async with AsyncClient(target, api_key=consumer.key) as client:
        answer = await client.generate("hi", model="async-model")
        assert (answer.output, answer.cost_nanos) == ("ok: hi", CALL_NANOS)
        events = [e async for e in client.generate_stream("hi", model="async-model")]
        assert "".join(e.text for e in events if isinstance(e, Delta)) == "ok: hi"
        assert isinstance(events[-1], Done)
        assert (await client.get_model("async-model")).name == "async-model"
        assert [m.name for m in await client.list_models(type="text")] == ["async-model"]
        totals = (await client.usage()).usage
        assert (totals.requests, totals.cost_nanos) == (2, 2 * CALL_NANOS)
        with pytest.raises(NotFound) as missing:
            await client.get_model("nope")
        assert missing.value.reason == "NOT_FOUND"  # read from the status details trailer
        with pytest.raises(InvalidArgument) as invalid:
            await client.generate("hi", model="async-model", parameters={"max_tokens": -1})
        assert invalid.value.field == "parameters.max_tokens"
        with pytest.raises(PermissionDenied):
            await client.delete_model("async-model")
    async with AsyncClient(target, api_key=ADMIN_KEY) as admin:
        assert consumer.id in {k.id for k in await admin.list_keys()}
        await admin.revoke_key(consumer.id)
    async with AsyncClient(target, api_key=consumer.key) as client:
        with pytest.raises(AuthenticationError):
            await client.generate("hi", model="async-model")


async def test_leaving_a_stream_early_cancels_the_provider_call(gateway: Harness,
                                                                provider_url: str):
    path = "/stream/ndjson"
    before = len(await events(gateway, provider_url, path, "disconnect"))
    async with AsyncClient(gateway.grpc_target, api_key=ADMIN_KEY) as admin:
        await admin.register_model(model_spec("streamer", f"{provider_url}{path}?n=50&gap_ms=50"))
        stream = admin.generate_stream("hi", model="streamer")
        assert await anext(stream) == Delta("w0 ")
        await stream.aclose()
    await next_event(gateway, provider_url, path, "disconnect", before)

    def first_event(client: Client) -> object:
        stream = client.generate_stream("hi", model="streamer")
        event = next(stream)
        stream.close()
        return event

    with Client(gateway.grpc_target, api_key=ADMIN_KEY) as client:  # open until the provider
        assert await asyncio.to_thread(first_event, client) == Delta("w0 ")  # sees the cancel
        await next_event(gateway, provider_url, path, "disconnect", before + 1)


class ScriptedRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """A registry whose GetModel first fails as scripted, then answers; it remembers the
    key of every call."""

    def __init__(self, *failures: tuple[grpc.StatusCode, str, float]) -> None:
        self.failures = list(failures)
        self.keys: list[str] = []

    async def GetModel(self, request: registry_pb2.GetModelRequest,
                       context: aio.ServicerContext[Any, Any]) -> registry_pb2.Model:
        self.keys.extend(v for k, v in context.invocation_metadata() or ()
                         if k == "authorization" and isinstance(v, str))
        if self.failures:
            code, message, retry_after = self.failures.pop(0)
            await context.abort(code, message, trailing_metadata=status_trailer(
                code, message, retry_after))
        return registry_pb2.Model(name=request.name, type="text")


def status_trailer(code: grpc.StatusCode, message: str,
                   retry_after: float) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=code.value[0], message=message)
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=retry_after))
    status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return (("grpc-status-details-bin", status.SerializeToString()),)


@contextlib.asynccontextmanager
async def scripted_server(registry: ScriptedRegistry,
                          credentials: grpc.ServerCredentials | None = None,
                          ) -> AsyncIterator[str]:
    server = aio.server()
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(registry, server)
    port = server.add_secure_port("127.0.0.1:0", credentials) if credentials \
        else server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_the_async_client_retries_a_read_after_retry_info():
    registry = ScriptedRegistry((grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", 0.01),
                                (grpc.StatusCode.UNAVAILABLE, "draining", 0.01))
    async with scripted_server(registry) as target, \
            AsyncClient(target, api_key="ai1_retry") as client:
        assert (await client.get_model("m")).name == "m"
    assert registry.keys == ["Bearer ai1_retry"] * 3


async def test_the_async_client_gives_up_after_its_attempts():
    registry = ScriptedRegistry(*[(grpc.StatusCode.UNAVAILABLE, "draining", 0.01)] * 3)
    async with scripted_server(registry) as target, \
            AsyncClient(target, api_key="k", retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(Unavailable, match="draining"):
            await client.get_model("m")
    assert len(registry.keys) == 2


async def test_tls_verifies_the_gateway_against_the_ca_file(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    registry = ScriptedRegistry()
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    no_retry = RetryPolicy(max_attempts=1)
    async with scripted_server(registry, credentials) as target:
        async with AsyncClient(target, api_key="ai1_tls", ca_file=cert) as client:
            assert (await client.get_model("m")).name == "m"

        def blocking() -> str:
            with Client(target, api_key="ai1_tls", ca_file=str(cert)) as client:
                return client.get_model("n").name

        assert await asyncio.to_thread(blocking) == "n"
        assert registry.keys == ["Bearer ai1_tls"] * 2
        # The system's roots do not know this certificate; in clear, the server hangs up.
        async with AsyncClient(target, api_key="k", tls=True, retry=no_retry) as client:
            with pytest.raises(Unavailable):
                await client.get_model("m")
        async with AsyncClient(target, api_key="k", retry=no_retry) as client:
            with pytest.raises(Unavailable):
                await client.get_model("m")
        assert len(registry.keys) == 2
