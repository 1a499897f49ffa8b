"""bridge/links.py over an in-memory transport: what a fetched audio link becomes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import pytest

from ai1net.bridge.errors import HttpError
from ai1net.bridge.links import fetch_audio
from ai1net.server.errors import UpstreamViolation
from ai1net.server.transport import ProviderRequest
from ai1net.v1 import registry_pb2

MODEL = registry_pb2.Model(name="speaker", timeout_ms=200, first_byte_timeout_ms=100,
                           max_response_bytes=1 << 20)


class Answer:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status, self.headers, self._body = status, headers, body

    async def read(self) -> bytes:
        if self._body == b"stall":
            await asyncio.sleep(10)
        return self._body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self._body


class FakeTransport:
    def __init__(self, answer: Answer | Exception) -> None:
        self.answer = answer
        self.fetched: list[ProviderRequest] = []

    def open(self, request: ProviderRequest) -> contextlib.AbstractAsyncContextManager[Answer]:
        raise AssertionError("a link is fetched with GET, never POSTed")

    @contextlib.asynccontextmanager
    async def fetch(self, request: ProviderRequest) -> AsyncIterator[Answer]:
        self.fetched.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        yield self.answer

    async def close(self) -> None:
        return None


async def test_the_answers_media_type_or_audio_mpeg_and_the_models_limits():
    typed = FakeTransport(Answer(200, {"Content-Type": "audio/ogg; codecs=opus"}, b"OggS"))
    assert await fetch_audio(typed, MODEL, "https://cdn.example/a.ogg") == ("audio/ogg", b"OggS")
    untyped = FakeTransport(Answer(200, {}, b"ID3"))
    assert await fetch_audio(untyped, MODEL, "http://cdn.example/a") == ("audio/mpeg", b"ID3")
    sent = typed.fetched[0]
    assert sent.limits.body_bytes == 1 << 20
    assert sent.first_byte_timeout == pytest.approx(0.1)
    assert "Authorization" not in sent.headers


@pytest.mark.parametrize(("answer", "url", "status", "says"), [
    (Answer(404, {}, b""), "https://cdn.example/a", 502, "its link answered HTTP 404"),
    (UpstreamViolation("the provider's answer is over 1048576 bytes (max_response_bytes)",
                       kind="response_bytes"), "https://cdn.example/a", 502,
     "max_response_bytes"),
    (Answer(200, {}, b"stall"), "https://cdn.example/a", 504, "did not arrive within 200 ms"),
    (Answer(200, {}, b""), "ftp://cdn.example/a", 502, "neither a data: nor an http(s) URL"),
])
async def test_a_failed_fetch_is_the_documented_error(answer: Answer | Exception, url: str,
                                                      status: int, says: str):
    with pytest.raises(HttpError) as failed:
        await fetch_audio(FakeTransport(answer), MODEL, url)
    assert failed.value.status == status
    assert says in failed.value.message and "speaker" in failed.value.message
