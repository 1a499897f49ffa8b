"""Property tests of the provider client's parser (server/http1.py): whatever bytes a
provider sends, cut however the network cuts them, only the documented errors come out,
reading never hangs once the connection is gone, and what is held stays within the limits."""

from __future__ import annotations

import asyncio
import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai1net.server.http1 import Connection, Disconnected, Limits, ProtocolError, _Origin

LIMITS = Limits(body_bytes=2048, head_bytes=512, head_fields=16)
VALID = [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
    b'{"output": "ok"}',
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n7\r\nsecond\n\r\n"
    b"0\r\nX-Trailer: t\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
    % (len(gzip.compress(b"z" * 2000)), gzip.compress(b"z" * 2000)),
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n",
]
DOCUMENTED = (ProtocolError, Disconnected)  # LimitExceeded is a ProtocolError


class FakeTransport(asyncio.Transport):
    def __init__(self, protocol: Connection) -> None:
        super().__init__()
        self.protocol = protocol
        self.closing = False
        self.paused = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if action == "insert":
            data[at:at] = chunk
        elif action == "delete":
            del data[at:at + len(chunk)]
        elif action == "replace":
            data[at:at + len(chunk)] = chunk
        else:
            data[at:at] = data[max(0, at - 64):at] * draw(st.integers(1, 40))
    return bytes(data)


answers = st.one_of(st.binary(max_size=3000), mutated(), st.sampled_from(VALID))


async def feed(data: bytes, cuts: list[int], *, valid: bool = False) -> None:
    connection = Connection(_Origin("provider.test", 80, False))
    transport = FakeTransport(connection)
    connection.connection_made(transport)
    response = connection.send(b"POST / HTTP/1.1\r\n\r\n", LIMITS)
    pieces, last = [], 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    for piece in pieces:
        if piece and not transport.closing:
            connection.data_received(piece)  # never raises: failures go to the response
        held = sum(len(chunk) for chunk in response._body)
        assert held <= LIMITS.body_bytes
    if not transport.closing:
        connection.eof_received()
        transport.close()
    await asyncio.sleep(0)  # connection_lost runs
    try:
        async with asyncio.timeout(1):  # nothing hangs once the connection is gone
            await response.head
            body = await response.read()
    except DOCUMENTED:
        assert not valid
        return
    assert len(body) <= LIMITS.body_bytes
    assert response.status >= 200
    assert len(response.headers) <= LIMITS.head_fields


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=answers, cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_any_answer_ends_in_a_body_or_a_documented_error(data: bytes, cuts: list[int]) -> None:
    asyncio.run(feed(data, cuts))


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_valid_answers_parse_however_they_are_cut(cuts: list[int]) -> None:
    async def each() -> None:
        for answer in VALID:
            await feed(answer, cuts, valid=True)
    asyncio.run(each())
