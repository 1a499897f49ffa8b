"""server/http1.py against scripted HTTP servers on loopback: exact bytes in, exact bytes out."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ai1net.server import http1
from ai1net.server.http1 import (
    MAX_BUFFERED,
    ConnectError,
    ConnectionPool,
    Disconnected,
    LimitExceeded,
    Limits,
    NotAnswered,
    PoolTimeout,
    ProtocolError,
)
from tests.support.certs import self_signed

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]
ANSWER = b'{"output": "ok"}'


class Server:
    """Runs ``script`` for each request on each connection; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.answered: set[int] = set()  # connections (by writer id) a script has answered
        self.closed = asyncio.Event()
        self.released = asyncio.Event()  # for `held`
        self._arrived = asyncio.Event()

    async def until_requests(self, count: int) -> None:
        while len(self.requests) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while not writer.is_closing():
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                self._arrived.set()
                await self.script(reader, writer, self)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()
            self.closed.set()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[tuple[Server, str]]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> tuple[Server, str]:
        server = Server(script)
        listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        servers.append(listening)
        return server, f"http://127.0.0.1:{listening.sockets[0].getsockname()[1]}/v1/generate"

    yield start
    for listening in servers:
        listening.close()


@contextlib.asynccontextmanager
async def pool_of(**options: Any) -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(**{"guard": False, **options})
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def pool() -> AsyncIterator[ConnectionPool]:
    async with pool_of() as pool:
        yield pool


def answer(body: bytes = ANSWER, *extra: bytes) -> bytes:
    return b"".join((b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", *extra,
                     b"Content-Length: %d\r\n\r\n" % len(body), body))


async def ok(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
    writer.write(answer())


async def held(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    """Answers once ``server.released`` is set."""
    await server.released.wait()
    writer.write(answer())


async def post(pool: ConnectionPool, url: str, headers: dict[str, str] | None = None,
               body: bytes = b"{}") -> tuple[int, str | None, bytes]:
    exchange = await pool.open(url, headers or {}, body)
    response = exchange.response
    try:
        return response.status, response.headers.get("CONTENT-TYPE"), await response.read()
    finally:
        pool.release(exchange.connection)


async def test_requests_share_one_keep_alive_connection(serve, pool):
    server, url = await serve(ok)
    for _ in range(3):
        assert await post(pool, url, {"Authorization": "Bearer k"}, b'{"input": "hi"}') == (
            200, "application/json", ANSWER)
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer k\r\n" in request
    assert b"\r\nUser-Agent: ai1net-gateway\r\n" in request
    assert request.endswith(b"Content-Length: 15\r\n\r\n{\"input\": \"hi\"}")


async def test_a_chunked_answer_streams_as_it_arrives(serve, pool):
    first_seen = asyncio.Event()

    async def chunked(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"6\r\nfirst\n\r\n")
        await first_seen.wait()  # the second part only once the first reached the client
        writer.write(b"7\r\nsecond\n\r\n0\r\n\r\n")

    server, url = await serve(chunked)
    exchange = await pool.open(url, {}, b"{}")
    pieces = []
    async for chunk in exchange.response.chunks():
        pieces.append(chunk)
        first_seen.set()
    pool.release(exchange.connection)
    assert pieces == [b"first\n", b"second\n"]
    assert await post(pool, url) == (200, None, b"first\nsecond\n")  # read whole, reused
    assert server.connections == 1


async def test_gzip_and_deflate_answers_are_decoded(serve, pool):
    async def compressed(_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         server: Server) -> None:
        encoding = b"gzip" if len(server.requests) == 1 else b"deflate"
        body = gzip.compress(ANSWER) if encoding == b"gzip" else zlib.compress(ANSWER)
        writer.write(answer(body, b"Content-Encoding: " + encoding + b"\r\n"))

    _, url = await serve(compressed)
    assert (await post(pool, url))[2] == ANSWER
    assert (await post(pool, url))[2] == ANSWER


async def test_an_answer_without_length_ends_with_the_connection(serve, pool):
    async def until_close(_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          _s: Server) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + ANSWER)
        await writer.drain()
        writer.close()

    server, url = await serve(until_close)
    assert (await post(pool, url))[2] == ANSWER
    assert (await post(pool, url))[2] == ANSWER
    assert server.connections == 2  # "Connection: close": never reused


async def test_a_connection_closed_mid_answer_is_a_disconnect(serve, pool):
    async def cut(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"out")
        await writer.drain()
        writer.close()

    _, url = await serve(cut)
    with pytest.raises(Disconnected, match="before its answer was complete"):
        await post(pool, url)


async def test_an_answer_that_is_not_http_is_a_protocol_error(serve, pool):
    async def garbage(_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      _s: Server) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    _, url = await serve(garbage)
    with pytest.raises(ProtocolError, match="not valid HTTP"):
        await post(pool, url)


async def test_an_unsupported_encoding_is_a_protocol_error(serve, pool):
    async def brotli(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
        writer.write(answer(b"\x0b\x02\x80", b"Content-Encoding: br\r\n"))

    _, url = await serve(brotli)
    with pytest.raises(ProtocolError, match="unsupported encoding"):
        await post(pool, url)


async def test_an_interim_answer_is_skipped(serve, pool):
    async def continued(_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        _s: Server) -> None:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + answer())

    _, url = await serve(continued)
    assert await post(pool, url) == (200, "application/json", ANSWER)


async def test_the_guard_refuses_non_public_addresses_and_names(serve):
    server, url = await serve(ok)
    async with pool_of(guard=True) as guarded:
        for target in (url, url.replace("127.0.0.1", "localhost"),
                       url.replace("127.0.0.1", "127.1"), "http://[::1]:9/x"):
            with pytest.raises(ConnectError, match="not a public address"):
                await post(guarded, target)
    assert server.connections == 0


async def test_connections_per_host_are_capped(serve):
    server, url = await serve(held)
    async with pool_of(limit_per_host=2) as capped:
        calls = [asyncio.create_task(post(capped, url)) for _ in range(5)]
        await server.until_requests(2)
        server.released.set()
        assert [status for status, _, _ in await asyncio.gather(*calls)] == [200] * 5
    assert server.most_open == 2


async def test_a_cancelled_exchange_closes_its_connection(serve, pool):
    async def silent(reader: asyncio.StreamReader, _w: asyncio.StreamWriter, _s: Server) -> None:
        await reader.read()  # never answers; returns when the client hangs up

    server, url = await serve(silent)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await post(pool, url)
    await asyncio.wait_for(server.closed.wait(), 5)  # the provider saw the hang-up
    assert server.open_now == 0


async def test_a_connection_the_provider_closed_while_idle_is_not_reused(serve, pool):
    async def once(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
        writer.write(answer())
        await writer.drain()
        writer.close()  # no "Connection: close" said

    server, url = await serve(once)
    assert (await post(pool, url))[0] == 200
    await asyncio.wait_for(server.closed.wait(), 5)
    # Whether the pool has seen the close yet or meets it on sending, the answer comes on a
    # new connection.
    assert (await post(pool, url))[0] == 200
    assert server.connections == 2


async def test_a_header_with_a_line_break_is_refused(serve, pool):
    server, url = await serve(ok)
    with pytest.raises(ProtocolError, match="not a valid header"):
        await post(pool, url, {"x-api-key": "k\r\nHost: elsewhere"})
    assert server.requests == []


async def test_a_refused_connection_is_a_connect_error(serve, pool):
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    with pytest.raises(ConnectError, match="refused"):
        await post(pool, f"http://127.0.0.1:{port}/")


async def test_a_large_answer_arrives_whole_read_or_streamed(serve, pool):
    body = bytes(range(256)) * (3 * MAX_BUFFERED // 256)  # three times the unread limit

    async def large(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
        writer.write(answer(body))
        await writer.drain()

    _, url = await serve(large)
    assert (await post(pool, url))[2] == body
    exchange = await pool.open(url, {}, b"{}")
    received = bytearray()
    async for chunk in exchange.response.chunks():
        received += chunk
        await asyncio.sleep(0)  # a slow reader: the pool pauses and resumes reading
    pool.release(exchange.connection)
    assert received == body


async def test_a_waiter_that_leaves_passes_its_turn_on(serve):
    server, url = await serve(held)
    async with pool_of(limit_per_host=1) as capped:
        first = asyncio.create_task(post(capped, url))
        await server.until_requests(1)
        leaving, staying = (asyncio.create_task(post(capped, url)) for _ in range(2))
        await asyncio.sleep(0)  # one turn of the loop: both now wait for the one connection
        server.released.set()
        assert (await first)[0] == 200
        leaving.cancel()  # its turn came (or is coming): cancelled, it must pass it on
        assert (await asyncio.wait_for(staying, 5))[0] == 200


async def test_an_answer_completed_while_reading_was_paused_leaves_it_resumed(serve, pool,
                                                                             monkeypatch):
    monkeypatch.setattr(http1, "MAX_BUFFERED", 1)  # any body pauses reading
    server, url = await serve(ok)
    exchange = await pool.open(url, {}, b"{}")
    assert [chunk async for chunk in exchange.response.chunks()] == [ANSWER]
    pool.release(exchange.connection)
    assert (await asyncio.wait_for(post(pool, url), 5))[2] == ANSWER  # the same connection
    assert server.connections == 1


async def test_https_is_verified_against_the_trust_store(tmp_path):
    cert, key = self_signed(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server = Server(ok)
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=server_side)
    url = f"https://127.0.0.1:{listening.sockets[0].getsockname()[1]}/v1/generate"
    trusting = ssl.create_default_context(cafile=str(cert))
    try:
        async with pool_of(ssl_context=trusting) as pool:
            assert await post(pool, url) == (200, "application/json", ANSWER)
        async with pool_of() as pool:
            with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await post(pool, url)  # the system's trust store does not know this one
    finally:
        listening.close()
    assert server.requests[0].startswith(b"POST /v1/generate HTTP/1.1\r\n")


async def test_a_request_the_provider_read_is_never_sent_again(serve, pool):
    """A kept-alive connection closed by the provider after it read the next request: the
    request may have been acted on, so it fails instead of going out a second time."""
    async def first_only(_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         server: Server) -> None:
        if id(writer) in server.answered:  # reads the second request, then hangs up
            writer.close()
            return
        server.answered.add(id(writer))
        writer.write(answer())

    server, url = await serve(first_only)
    assert (await post(pool, url, {"Idempotency-Key": "gen_1"}))[2] == ANSWER
    with pytest.raises(Disconnected, match="without answering"):
        await post(pool, url, {"Idempotency-Key": "gen_2"})
    assert [r.count(b"Idempotency-Key: gen_2") for r in server.requests] == [0, 1]
    assert server.connections == 1


async def test_a_request_that_could_not_be_written_goes_out_on_another_connection(serve, pool):
    """A pooled connection found closed before the request was written: the provider never
    saw it, so it goes out on a new connection."""
    server, url = await serve(ok)
    exchange = await pool.open(url, {}, b"{}")
    await exchange.response.read()
    pool.release(exchange.connection)
    exchange.connection._transport.close()  # closed from our side while idle, as a timer would
    assert (await post(pool, url))[2] == ANSWER
    assert server.connections == 2
    assert len(server.requests) == 2


# -- RFC 9112 / 9110: what a provider's answer may and may not be ------------------------------


def scripted(raw: bytes) -> Script:
    async def script(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _s: Server) -> None:
        writer.write(raw)
    return script


@pytest.mark.parametrize(("raw", "error", "message"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", ProtocolError, "Transfer-Encoding can't be present"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
     ProtocolError, "Invalid character in chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhi\r\n",
     ProtocolError, "Chunk size overflow"),
    (b"HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n",
     ProtocolError, "not valid HTTP"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
     ProtocolError, "Duplicate Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc",
     ProtocolError, "unsupported transfer coding"),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
     ProtocolError, r"upgrade \(HTTP 101\)"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nyo",
     ProtocolError, "a second answer nobody asked for"),
    (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", ProtocolError, "not valid HTTP"),
])
async def test_answers_the_rfc_refuses_are_refused(serve, pool, raw, error, message):
    _, url = await serve(scripted(raw))
    with pytest.raises(error, match=message):
        await post(pool, url)


async def test_interim_answers_are_skipped_however_many(serve, pool):
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    _, url = await serve(scripted(interim + answer()))
    assert await post(pool, url) == (200, "application/json", ANSWER)


async def test_endless_interim_answers_hit_the_header_limit(serve, pool):
    _, url = await serve(scripted(b"HTTP/1.1 100 Continue\r\n\r\n" * 5000))
    with pytest.raises(LimitExceeded, match="header block is over 65536 bytes") as caught:
        await post(pool, url)
    assert caught.value.kind == "header_bytes"


async def test_trailers_are_never_merged_into_the_headers(serve, pool):
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n5\r\nhello\r\n0\r\nContent-Type: text/evil\r\nX-Trailer: t\r\n\r\n")
    _, url = await serve(scripted(raw))
    exchange = await pool.open(url, {}, b"{}")
    assert await exchange.response.read() == b"hello"
    assert dict(exchange.response.headers) == {"content-type": "application/json",
                                               "transfer-encoding": "chunked"}
    pool.release(exchange.connection)


async def test_repeated_fields_are_joined_in_linear_time(serve, pool):
    fields = b"".join(b"X-Many: %d\r\n" % i for i in range(100))
    _, url = await serve(scripted(answer(ANSWER, fields)))
    exchange = await pool.open(url, {}, b"{}")
    assert exchange.response.headers["x-many"] == ", ".join(str(i) for i in range(100))
    await exchange.response.read()
    pool.release(exchange.connection)


@pytest.mark.parametrize(("fields", "kind"), [
    (b"".join(b"X-F-%d: v\r\n" % i for i in range(128)), "header_fields"),
    (b"X-Big: " + b"a" * (64 * 1024) + b"\r\n", "header_bytes"),
])
async def test_the_header_block_is_capped(serve, pool, fields, kind):
    _, url = await serve(scripted(answer(ANSWER, fields)))
    with pytest.raises(LimitExceeded) as caught:
        await post(pool, url)
    assert caught.value.kind == kind


async def test_a_header_block_just_under_the_caps_is_fine(serve, pool):
    fields = b"".join(b"X-F-%d: v\r\n" % i for i in range(125))  # + 2 of answer()'s own
    _, url = await serve(scripted(answer(ANSWER, fields)))
    assert (await post(pool, url))[0] == 200


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
async def test_a_compression_bomb_stops_at_the_limit(serve, pool, encoding):
    zeros = bytes(8 << 20)
    body = gzip.compress(zeros) if encoding == b"gzip" else zlib.compress(zeros)
    _, url = await serve(scripted(answer(body, b"Content-Encoding: " + encoding + b"\r\n")))
    limits = Limits(body_bytes=1 << 20)
    exchange = await pool.open(url, {}, b"{}", limits=limits)
    with pytest.raises(LimitExceeded, match="decompresses to over 1048576 bytes"):
        await exchange.response.read()
    pool.release(exchange.connection)
    exchange = await pool.open(url, {}, b"{}", limits=Limits(body_bytes=8 << 20))
    assert await exchange.response.read() == zeros  # exactly at the limit: whole
    pool.release(exchange.connection)


async def test_the_body_is_capped_on_the_wire(serve, pool):
    _, url = await serve(scripted(answer(b"x" * 4096)))
    exchange = await pool.open(url, {}, b"{}", limits=Limits(body_bytes=4095))
    with pytest.raises(LimitExceeded, match="answer is over 4095 bytes") as caught:
        await exchange.response.read()
    assert caught.value.kind == "response_bytes"
    pool.release(exchange.connection)


async def test_idle_connections_close_before_the_providers_keep_alive_runs_out(serve, pool,
                                                                              monkeypatch):
    monkeypatch.setattr(http1, "KEEP_ALIVE_MARGIN_S", 0.95)
    server, url = await serve(scripted(answer(ANSWER, b"Keep-Alive: timeout=1\r\n")))
    assert (await post(pool, url))[0] == 200
    # The pool closes it ~50 ms after parking it, well before the provider's 1 s.
    await asyncio.wait_for(server.closed.wait(), 0.9)
    assert server.open_now == 0
    assert (await post(pool, url))[0] == 200
    assert server.connections == 2


@pytest.mark.parametrize(("header", "seconds"), [
    (None, http1.IDLE_TIMEOUT_S), ("timeout=5, max=100", 4.0), ("max=3, timeout=120", 15.0),
    ("timeout=1", 0.0), ("timeout=abc", http1.IDLE_TIMEOUT_S), ("timeout=-4", 0.0)])
def test_keep_alive_timeout_is_honoured_with_a_margin(header, seconds):
    assert http1._idle_timeout(header) == seconds


async def test_a_keep_alive_timeout_too_short_to_use_is_not_kept(serve, pool):
    server, url = await serve(scripted(answer(ANSWER, b"Keep-Alive: timeout=1\r\n")))
    assert (await post(pool, url))[0] == 200
    await asyncio.wait_for(server.closed.wait(), 5)  # closed at once, not parked
    assert (await post(pool, url))[0] == 200
    assert server.connections == 2


async def test_waiting_for_a_connection_is_its_own_bounded_error(serve):
    server, url = await serve(held)
    async with pool_of(limit_per_host=1) as capped:
        first = asyncio.create_task(post(capped, url))
        await server.until_requests(1)
        with pytest.raises(PoolTimeout, match="stayed busy for 50 ms"):
            await capped.acquire(url, wait=0.05)
        server.released.set()
        assert (await first)[0] == 200


async def test_every_resolved_address_is_tried(serve, pool, monkeypatch):
    server, url = await serve(ok)
    port = int(url.split(":")[2].split("/")[0])
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.2", 0)
    dead_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()

    async def resolve(_host: str, _port: int) -> list[http1.AddrInfo]:
        tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
        return [(*tcp, ("127.0.0.2", dead_port)), (*tcp, ("127.0.0.1", port))]

    monkeypatch.setattr(pool, "_resolve", resolve)
    assert (await post(pool, url))[0] == 200
    assert server.connections == 1


# -- GET: health probes and audio links, through the same pool, guard and limits ---------------


async def get(pool: ConnectionPool, url: str, headers: dict[str, str] | None = None, *,
              limits: Limits = http1.DEFAULT_LIMITS) -> tuple[int, bytes]:
    connection = await pool.acquire(url, wait=1.0)
    exchange = await pool.get(connection, url, headers or {}, limits, wait=1.0)
    try:
        return exchange.response.status, await exchange.response.read()
    finally:
        pool.release(exchange.connection)


async def test_a_get_has_no_content_and_shares_the_posts_connection(serve, pool):
    server, url = await serve(ok)
    assert await get(pool, url, {"x-api-key": "k"}) == (200, ANSWER)
    assert (await post(pool, url))[0] == 200
    assert await get(pool, url) == (200, ANSWER)
    assert server.connections == 1
    request = server.requests[0]
    assert request.startswith(b"GET /v1/generate HTTP/1.1\r\nHost: 127.0.0.1:")
    assert request.endswith(b"\r\nx-api-key: k\r\n\r\n")  # no body, no Content-Length
    assert b"Content-Length" not in request
    assert server.requests[1].startswith(b"POST /v1/generate HTTP/1.1\r\n")
    assert server.requests[2].startswith(b"GET /v1/generate HTTP/1.1\r\n")


async def drops_reused(_r: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       server: Server) -> None:
    """Answers each connection's first request; reads its second, then hangs up."""
    if id(writer) in server.answered:
        writer.close()
    else:
        server.answered.add(id(writer))
        writer.write(answer())


async def test_a_get_a_reused_connection_dropped_goes_out_once_more(serve, pool):
    """GET is idempotent (RFC 9110 §9.2.2): unlike a POST, it is sent again, on a new
    connection, when the kept-alive one closed without answering."""
    server, url = await serve(drops_reused)
    assert await get(pool, url) == (200, ANSWER)
    assert await get(pool, url) == (200, ANSWER)
    assert len(server.requests) == 3  # the first, the dropped one, the retry
    assert server.connections == 2
    with pytest.raises(Disconnected, match="without answering"):
        await post(pool, url)  # the rule for POST is unchanged


async def test_a_get_is_retried_once_only(serve, pool):
    server, url = await serve(drops_reused)
    both = await asyncio.gather(get(pool, url), get(pool, url))  # two idle connections
    assert both == [(200, ANSWER)] * 2
    with pytest.raises(NotAnswered):  # dropped on the one, then on the other
        await get(pool, url)
    assert len(server.requests) == 4
    assert server.connections == 2


async def test_a_get_is_bounded_by_the_same_limits(serve, pool):
    zeros = bytes(4 << 20)
    _, bomb = await serve(scripted(answer(gzip.compress(zeros), b"Content-Encoding: gzip\r\n")))
    with pytest.raises(LimitExceeded, match="decompresses to over 1048576 bytes"):
        await get(pool, bomb, limits=Limits(body_bytes=1 << 20))
    _, large = await serve(scripted(answer(b"x" * 4096)))
    with pytest.raises(LimitExceeded, match="answer is over 4095 bytes"):
        await get(pool, large, limits=Limits(body_bytes=4095))
    fields = b"".join(b"X-F-%d: v\r\n" % i for i in range(200))
    _, crowded = await serve(scripted(answer(ANSWER, fields)))
    with pytest.raises(LimitExceeded, match="over 128 header fields"):
        await get(pool, crowded)


async def test_a_get_is_guarded_like_a_post(serve):
    server, url = await serve(ok)
    async with pool_of(guard=True) as guarded:
        with pytest.raises(ConnectError, match="not a public address"):
            await get(guarded, url.replace("127.0.0.1", "localhost"))
    assert server.connections == 0
