"""The bridge's stream relay when the caller's connection goes away under a write.

Under load a write can find the connection already closing before aiohttp has told the
handler that its caller left (seen with 9,500 streams closed at once): a fake writer makes
that moment happen here on demand.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.abc import AbstractStreamWriter
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.test_utils import make_mocked_request

from ai1net.bridge.backend import REQUEST_ID
from ai1net.bridge.streaming import EOF, NativeFraming, relay
from ai1net.v1 import generate_pb2


class GoneAfter(AbstractStreamWriter):
    """A connection that takes ``writes`` writes, then is closing (-1: not even the
    headers)."""

    def __init__(self, writes: int) -> None:
        self.left = writes
        self.written: list[bytes] = []

    async def write(self, chunk: Any) -> None:
        if self.left <= 0:
            raise ClientConnectionResetError("Cannot write to closing transport")
        self.left -= 1
        self.written.append(bytes(chunk))

    async def write_eof(self, chunk: bytes = b"") -> None:
        await self.write(chunk)

    async def drain(self) -> None:
        return None

    def enable_compression(self, encoding: str = "deflate",
                           strategy: int | None = None) -> None:
        return None

    def enable_chunking(self) -> None:
        return None

    async def write_headers(self, status_line: str, headers: Any) -> None:
        if self.left < 0:  # gone before the headers
            raise ClientConnectionResetError("Cannot write to closing transport")


class Stream:
    """A GenerateStream call of ``count`` deltas, as the bridge's client sees it."""

    def __init__(self, count: int) -> None:
        self.messages = [generate_pb2.GenerateStreamResponse(delta=f"t{n}")
                         for n in range(count)]
        self.cancelled = False

    async def read(self) -> Any:
        await asyncio.sleep(0)
        return self.messages.pop(0) if self.messages else EOF

    async def initial_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-ai1net-model", "m"),)

    def cancel(self) -> bool:
        self.cancelled = True
        return True


# Before the headers, after the first message, mid-way.
@pytest.mark.parametrize("writes", [-1, 1, 3])
async def test_a_write_to_a_closing_connection_cancels_the_call_quietly(
        writes: int, caplog: pytest.LogCaptureFixture) -> None:
    writer = GoneAfter(writes)
    request = make_mocked_request("POST", "/v1/generate", writer=writer)
    request[REQUEST_ID] = "req_test"
    call = Stream(10)
    with caplog.at_level(logging.DEBUG, logger="ai1net.bridge"):
        response = await relay(request, call, NativeFraming(sse=False))
    assert response.prepared
    assert call.cancelled  # the provider is told to stop; the call is billed as cancelled
    assert len(writer.written) == max(0, writes)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("hung up" in r.getMessage() for r in caplog.records)


async def test_a_connection_gone_at_the_very_end_leaves_the_finished_call_alone(
        caplog: pytest.LogCaptureFixture) -> None:
    writer = GoneAfter(3)  # the opening with the first message, two more, then the end fails
    request = make_mocked_request("POST", "/v1/generate", writer=writer)
    request[REQUEST_ID] = "req_test"
    call = Stream(3)
    with caplog.at_level(logging.DEBUG, logger="ai1net.bridge"):
        await relay(request, call, NativeFraming(sse=False))
    assert not call.cancelled  # every message was delivered: the call ended as it should
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_stream_written_to_the_end_is_not_cancelled() -> None:
    writer = GoneAfter(100)
    request = make_mocked_request("POST", "/v1/generate", writer=writer)
    request[REQUEST_ID] = "req_test"
    call = Stream(3)
    await relay(request, call, NativeFraming(sse=False))
    assert not call.cancelled
    assert b"".join(writer.written).count(b'"delta"') == 3
