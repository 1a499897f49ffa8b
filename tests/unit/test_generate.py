"""The Generator over an in-memory transport: fallback, accounting and stream endings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest

from ai1net.server.calls import GenerateCall
from ai1net.server.errors import UpstreamError
from ai1net.server.generate import Generator
from ai1net.server.health import HealthBoard
from ai1net.server.keys import Principal
from ai1net.server.providers import ProviderClient
from ai1net.server.quota import LocalQuota
from ai1net.server.registry import ModelRecord
from ai1net.server.routing import RouteRequest
from ai1net.server.usage import Ledger

NOW = datetime.now(UTC)
CALLER = Principal(id="key_c", name="c", role="consumer", key_hash="h", prefix="ai1_",
                   requests_per_minute=0, tokens_per_minute=0, budget_nanos=None,
                   created_at=NOW)


def model(name: str, price: int = 1_000_000) -> ModelRecord:
    return ModelRecord(
        id=f"mdl_{name}", name=name, owner="key_p", type="text",
        endpoint=f"http://{name}.test/v1/generate", auth_type="none", input_price_nanos=price,
        output_price_nanos=price, request_price_nanos=0, capabilities=("chat",),
        specialties=(), avg_latency_ms=100,
        accuracy_score=0.8, cost_efficiency="medium", timeout_ms=5_000,
        first_byte_timeout_ms=5_000, max_response_bytes=16 << 20, max_event_bytes=1 << 20,
        max_concurrency=100, api="ai1net", upstream_model="", description="", enabled=True,
        created_at=NOW,
        updated_at=NOW, has_credentials=False, auth_headers={})


class FakeResponse:
    def __init__(self, status: int, body: bytes = b"", chunks: list[bytes] | None = None,
                 content_type: str = "application/json", stall: bool = False) -> None:
        self.status = status
        self.headers = {"Content-Type": content_type}
        self._body = body
        self._chunks = chunks or []
        self._stall = stall

    async def read(self) -> bytes:
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._stall:
            await asyncio.Event().wait()


class FakeTransport:
    """Answers by host; records every request."""

    def __init__(self, answers: dict[str, FakeResponse]) -> None:
        self.answers = answers
        self.requests: list[str] = []

    @contextlib.asynccontextmanager
    async def open(self, request):
        host = request.url.split("/")[2].split(".")[0]
        self.requests.append(host)
        yield self.answers[host]

    async def close(self) -> None:
        return None


class Models:
    def __init__(self, *models: ModelRecord) -> None:
        self._models = {m.name: m for m in models}

    def find(self, name: str) -> ModelRecord | None:
        return self._models.get(name)

    def all(self) -> list[ModelRecord]:
        return list(self._models.values())


async def no_spend(_key: str) -> int:
    return 0


def generator(transport: FakeTransport, *models: ModelRecord) -> tuple[Generator, Ledger]:
    ledger = Ledger(db=None)  # type: ignore[arg-type]  # never flushed here
    return Generator(registry=Models(*models), providers=ProviderClient(  # type: ignore[arg-type]
        transport=transport), health=HealthBoard(), ledger=ledger,
        quota=LocalQuota(load_spent=no_spend)), ledger


def ok(text: str = "hi") -> FakeResponse:
    return FakeResponse(200, orjson.dumps({"output": text,
                                           "usage": {"input_tokens": 2, "output_tokens": 3}}))


async def test_routed_call_falls_back_once_and_is_accounted_once():
    transport = FakeTransport({"cheap": FakeResponse(503, b'{"error": {"message": "x"}}'),
                               "dear": ok("from dear")})
    gen, ledger = generator(transport, model("cheap", 1), model("dear", 9_000_000))
    outcome = await gen.generate(CALLER, GenerateCall(input="hello",
                                                      route=RouteRequest(strategy="cost")))
    assert outcome.model.name == "dear"
    assert outcome.attempts == 2
    assert transport.requests == ["cheap", "dear"]
    assert ledger.depth == 1
    assert outcome.cost_nanos == (2 * 9_000_000 + 3 * 9_000_000) // 1000


async def test_explicit_model_without_fallbacks_never_switches():
    transport = FakeTransport({"one": FakeResponse(500, b"{}"), "two": ok()})
    gen, ledger = generator(transport, model("one"), model("two"))
    with pytest.raises(UpstreamError):
        await gen.generate(CALLER, GenerateCall(input="hello", model="one"))
    assert transport.requests == ["one"]
    assert ledger.depth == 1  # the failure is accounted too


async def test_stream_without_done_is_an_error_billed_for_what_was_delivered():
    lines = [b'{"delta": "abcd"}\n', b'{"delta": "efgh"}\n']
    transport = FakeTransport({"s": FakeResponse(200, chunks=lines,
                                                 content_type="application/x-ndjson")})
    gen, ledger = generator(transport, model("s"))
    seen: list[str] = []

    async def emit(_progress, event) -> None:
        seen.append(event.text)

    with pytest.raises(UpstreamError, match="before it said done"):
        await gen.stream(CALLER, GenerateCall(input="hello", model="s"), emit)
    assert seen == ["abcd", "efgh"]
    [event] = ledger._pending
    assert event.outcome == "error"
    assert event.output_tokens == 2  # 8 characters delivered, estimated


async def test_cancelled_stream_is_accounted_as_cancelled():
    transport = FakeTransport({"s": FakeResponse(200, chunks=[b'{"delta": "abcd"}\n'],
                                                 content_type="application/x-ndjson",
                                                 stall=True)})
    gen, ledger = generator(transport, model("s"))
    started = asyncio.Event()

    async def emit(_progress, _event) -> None:
        started.set()

    task = asyncio.create_task(gen.stream(CALLER, GenerateCall(input="hello", model="s"), emit))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [event] = ledger._pending
    assert event.outcome == "cancelled"
    assert event.output_tokens == 1


async def test_a_providers_failure_asks_for_memory_back_and_a_success_does_not(monkeypatch):
    """The failed call's reference cycles and freed pages (server/memory.py)."""
    from ai1net.server import generate as generate_module

    asked: list[str] = []

    class Trimmer:
        def trim_soon(self) -> None:
            asked.append("trim")

    monkeypatch.setattr(generate_module, "TRIMMER", Trimmer())
    transport = FakeTransport({"bad": FakeResponse(500, b"{}"), "good": ok()})
    gen, _ = generator(transport, model("bad"), model("good"))
    await gen.generate(CALLER, GenerateCall(input="hello", model="good"))
    assert asked == []
    with pytest.raises(UpstreamError):
        await gen.generate(CALLER, GenerateCall(input="hello", model="bad"))
    assert asked == ["trim"]
