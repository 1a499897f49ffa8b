"""A lean HTTP/1.1 client for provider calls, held to RFC 9112 and RFC 9110: keep-alive
connections pooled per origin, answers parsed by httptools (llhttp, the parser Node.js uses),
everything a provider sends bounded while it is read.

The gateway POSTs a body (or GETs a health check or an audio link) and reads the answer
whole or as it streams, which needs far less than a general client: aiohttp's took about
three times the CPU per call of this one (``python -m bench.client_cost``), the largest
single cost on the gateway's hot path.

- ``Connection`` is the protocol object of one socket (its parser, its keep-alive state);
  ``Response`` is one exchange's answer, with the caps of its ``Limits``: the header block
  (bytes and fields, interim answers included), the body on the wire (framing included) and
  after decoding, so a compression bomb stops at the limit in one step;
- malformed answers are refused (llhttp's strict mode: Content-Length with
  Transfer-Encoding, bad chunk sizes, obs-fold, bare LF), and so are an upgrade (101), a
  transfer coding other than chunked, and bytes that answer no request; 1xx answers are
  skipped; trailers are read, bounded and dropped, never merged into the headers;
- one pool per origin (scheme, host, port), at most ``limit_per_host`` connections open, the
  most recently used reused first; idle connections are closed by a sweep on a timer before
  the provider would close them (``IDLE_TIMEOUT_S``, or a second under its ``Keep-Alive:
  timeout``), and never reused past that;
- a request is sent once: only one that could not be written (its connection found closed
  first) goes out on another connection; every request carries the caller's headers, so an
  ``Idempotency-Key`` lets the provider recognise a call it has seen. A GET, idempotent
  (RFC 9110 §9.2.2), is also retried once when a reused connection closed without
  answering it (`ConnectionPool.get`);
- names resolved at most every ``DNS_TTL_S``; every resolved address tried with Happy
  Eyeballs (RFC 8305, ``aiohappyeyeballs``); with ``guard`` on, every address is checked
  before it is connected to (the SSRF guard: DNS can change after registration);
- waiting for a free connection is bounded apart from the provider's time-outs
  (``PoolTimeout``): a saturated pool is the gateway's limit, not the provider's fault;
- a streamed answer held unread beyond ``MAX_BUFFERED`` bytes pauses reading (back-pressure).

Failures are ``OSError``: ``ConnectError`` (no connection), ``PoolTimeout`` (no free
connection in time), ``Disconnected`` (the connection closed mid-answer; ``NotAnswered``
when a reused one closed before any byte of the answer), ``ProtocolError``
(the answer is not HTTP, or not one a provider call allows) and its ``LimitExceeded`` (an
answer over a limit); transport.py maps them to domain errors.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import os
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohappyeyeballs
import httptools

from ai1net.server.endpoints import forbidden_address, forbidden_name, literal_address
from ai1net.server.memory import TRIMMER

IDLE_TIMEOUT_S = 15.0
KEEP_ALIVE_MARGIN_S = 1.0  # closed this long before the provider's own keep-alive time-out
SWEEP_S = 0.5  # how often idle connections are looked over (and closed up to this early)
DNS_TTL_S = 30.0
CONNECT_TIMEOUT_S = 10.0
HAPPY_EYEBALLS_DELAY_S = 0.25
MAX_BUFFERED = 1 << 20
TRIM_AFTER_BYTES = 1 << 20  # a failed answer that held this much gives memory back
MAX_TARGETS = 4096
USER_AGENT = "ai1net-gateway"
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS  # wbits that accept either header
_ENCODINGS = {"gzip", "x-gzip", "deflate"}
AddrInfo = tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one answer may hold (CONTRACT §3)."""

    body_bytes: int = 16 << 20  # on the wire (framing included) and after decoding, each
    head_bytes: int = 64 << 10  # the header block, interim answers' and trailers' included
    head_fields: int = 128


DEFAULT_LIMITS = Limits()


class ConnectError(OSError):
    """No connection to the provider: refused, unresolvable, or not a public address."""


class PoolTimeout(OSError):
    """Every connection to the provider's origin stayed busy for as long as a call may wait."""


class Disconnected(OSError):
    """The provider's connection closed before its answer was complete."""


class NotAnswered(Disconnected):
    """A kept-alive connection closed before any byte of the answer: the provider may or
    may not have seen the request."""


class ProtocolError(OSError):
    """The provider's answer is not valid HTTP/1.1, or not what a provider call allows."""


class LimitExceeded(ProtocolError):
    """The answer went over one of its ``Limits``; ``kind`` names which."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Headers(Mapping[str, str]):
    """Response headers looked up by any case; a repeated header's values joined by ", "."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items  # lower-cased names

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._items.get(name.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Response:
    """One exchange's answer: ``status`` and ``headers`` once its head is in, then its body,
    read whole (``read``) or as it arrives (``chunks``), within its ``Limits``."""

    __slots__ = ("_body", "_buffered", "_complete", "_connection", "_decoded", "_decoder",
                 "_error", "_fields", "_head_bytes", "_head_fields", "_in_head", "_interim",
                 "_keep_alive", "_limits", "_max_buffered", "_parser", "_paused", "_until_eof",
                 "_waiter", "_wire", "head", "headers", "idle_timeout", "received", "status")

    def __init__(self, connection: Connection, limits: Limits) -> None:
        self._connection = connection
        self._limits = limits
        # The answer's own parser (llhttp), whose callbacks are the on_* methods below.
        self._parser: httptools.HttpResponseParser | None = \
            httptools.HttpResponseParser(self)
        self.head: asyncio.Future[None] = connection.loop.create_future()  # head received
        self.idle_timeout = IDLE_TIMEOUT_S
        self._waiter: asyncio.Future[None] | None = None
        self._error: OSError | None = None
        self.status = 0
        self.headers = Headers({})
        self._fields: dict[str, list[str]] = {}
        self._in_head = True  # until the final answer's head is complete
        self._head_bytes = self._head_fields = 0
        self._wire = self._decoded = 0
        self._body: list[bytes] = []
        self._buffered = 0
        self._max_buffered = MAX_BUFFERED
        self._paused = self._complete = self._interim = self._until_eof = False
        self._keep_alive = False
        self.received = False  # any byte of the answer
        self._decoder: zlib._Decompress | None = None

    @property
    def complete(self) -> bool:
        return self._complete

    @property
    def keep_alive(self) -> bool:
        return self._complete and self._keep_alive

    async def read(self) -> bytes:
        self._max_buffered = self._limits.body_bytes  # the whole answer is wanted
        while not self._complete:
            await self._wait()
        if self._error is not None:  # e.g. a second answer right behind this one
            raise self._error
        body, self._body = self._body, []
        return body[0] if len(body) == 1 else b"".join(body)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._body:
                chunk = self._body[0] if len(self._body) == 1 else b"".join(self._body)
                self._body, self._buffered = [], 0
                yield chunk
            elif self._complete:
                if self._error is not None:
                    raise self._error
                return
            else:
                await self._wait()

    async def _wait(self) -> None:
        if self._error is None:
            if self._paused:
                self._paused = False
                self._connection.resume_reading()
            self._waiter = self._connection.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- fed by the connection -------------------------------------------------------------

    def fail(self, error: OSError) -> None:
        """The exchange failed; a complete answer fails too when its reader has not seen the
        end yet (the error is what the connection carried after it)."""
        if self._error is None:
            self._error = _without_frames(error)
            held = self._decoded + self._head_bytes
            # Nobody will read what was buffered: let it go now, and the memory with it.
            self._body, self._buffered, self._decoder, self._parser = [], 0, None, None
            if held > TRIM_AFTER_BYTES:
                TRIMMER.trim_soon()
            if not self.head.done():
                self.head.set_exception(error)
                self.head.exception()  # retrieved: a caller gone since must not warn
            self._wake()

    def head_room(self) -> int:
        """Bytes of header block the parser may still be fed (-1 once the head is in)."""
        return self._limits.head_bytes - self._head_bytes if self._in_head else -1

    def count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._limits.head_bytes:
            raise LimitExceeded("header_bytes", f"the provider's header block is over "
                                                f"{self._limits.head_bytes} bytes")

    def feed(self, data: bytes) -> None:
        if self._parser is None:  # failed or complete: nothing more is parsed
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise ProtocolError("the provider answered with an upgrade (HTTP 101), "
                                "which no provider call asks for") from exc
        except httptools.HttpParserError as exc:  # a callback's error comes wrapped
            cause = exc.__context__
            if isinstance(cause, OSError):
                raise cause from None
            raise ProtocolError(f"the provider's answer is not valid HTTP ({exc})") from exc

    def count_wire(self, size: int) -> None:
        self._wire += size
        if self._wire > self._limits.body_bytes:
            raise self._too_large("is")

    # -- httptools callbacks -----------------------------------------------------------------

    def _too_large(self, verb: str) -> LimitExceeded:
        return LimitExceeded("response_bytes", f"the provider's answer {verb} over "
                                               f"{self._limits.body_bytes} bytes "
                                               f"(max_response_bytes)")

    def on_message_begin(self) -> None:
        if self._complete:
            raise ProtocolError("the provider sent a second answer nobody asked for")
        self._fields = {}
        self._head_fields = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += 1
        if self._head_fields > self._limits.head_fields:
            raise LimitExceeded("header_fields", f"the provider sent over "
                                                 f"{self._limits.head_fields} header fields")
        if not self._in_head:
            return  # a trailer: counted, never merged into the headers already given
        key = name.decode("latin-1").lower()
        values = self._fields.get(key)
        if values is None:
            self._fields[key] = [value.decode("latin-1")]
        else:
            values.append(value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None  # it is the one calling
        status = parser.get_status_code()
        if status == 101 or parser.should_upgrade():
            raise ProtocolError("the provider answered with an upgrade (HTTP 101), "
                                "which no provider call asks for")
        if status < 200:  # 100 Continue and the like: the answer follows
            self._interim = True
            return
        fields = {name: values[0] if len(values) == 1 else ", ".join(values)
                  for name, values in self._fields.items()}
        coding = fields.get("transfer-encoding")
        if coding is not None and coding.strip().lower() != "chunked":
            raise ProtocolError(f"the provider used an unsupported transfer coding ({coding})")
        encoding = fields.get("content-encoding", "identity").strip().lower()
        if encoding in _ENCODINGS:
            self._decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
        elif encoding not in ("identity", ""):
            raise ProtocolError(f"the provider used an unsupported encoding ({encoding})")
        self.status, self.headers = status, Headers(fields)
        self.idle_timeout = _idle_timeout(fields.get("keep-alive"))
        self._in_head = False
        self._until_eof = "content-length" not in fields and coding is None \
            and status not in (204, 304)
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, data: bytes) -> None:
        if self._decoder is not None:
            room = self._limits.body_bytes - self._decoded
            try:  # never more than the limit out of one piece: a bomb stops here
                data = self._decoder.decompress(data, room + 1)
            except zlib.error as exc:
                raise ProtocolError("the provider's compressed answer is corrupt") from exc
            if len(data) > room:
                raise self._too_large("decompresses to")
            if not data:
                return
        self._decoded += len(data)
        if self._decoded > self._limits.body_bytes:
            raise self._too_large("is")
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > self._max_buffered and not self._paused:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        assert self._parser is not None  # it is the one calling
        self._keep_alive = self._parser.should_keep_alive()
        self.finish()

    def finish(self) -> None:
        if self._decoder is not None:
            room = self._limits.body_bytes - self._decoded
            tail = self._decoder.flush(room + 1)
            if len(tail) > room:
                raise self._too_large("decompresses to")
            if tail:
                self._body.append(tail)
        self._complete = True
        self._parser = None  # the parser and its callbacks hold this answer in a cycle
        if self._paused:  # nothing more to hold back; an idle connection must see a close
            self._paused = False
            self._connection.resume_reading()
        self._wake()

    def connection_lost(self, *, reused: bool) -> None:
        if self._complete or self._error is not None:
            return
        if self._until_eof and self.head.done():
            self.finish()
        elif reused and not self.received:
            self.fail(NotAnswered("the provider closed the kept-alive connection without "
                                  "answering"))
        else:
            self.fail(Disconnected("the provider closed the connection before its answer "
                                   "was complete"))


class Connection(asyncio.Protocol):
    """One keep-alive connection: its socket, its parser, and the exchange it carries."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._response: Response | None = None  # None while idle
        self.closed = False
        self.idle_until = 0.0
        self._exchanges = 0

    def writable(self) -> bool:
        return not self.closed and self._transport is not None \
            and not self._transport.is_closing()

    def send(self, request: bytes, limits: Limits) -> Response:
        assert self._transport is not None
        response = self._response = Response(self, limits)
        self._exchanges += 1
        self._transport.write(request)
        return response

    def reusable(self) -> bool:
        response = self._response
        return response is not None and response.keep_alive and not self.closed \
            and response.idle_timeout > 0

    def park(self, now: float) -> None:
        """Between exchanges: idle until reused, or until its idle time is up."""
        assert self._response is not None
        self.idle_until = now + self._response.idle_timeout
        self._response = None

    def close(self) -> None:
        self.closed = True
        self._response = None  # the exchange is over; no cycle keeps its answer alive
        if self._transport is not None:
            self._transport.close()

    def pause_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.resume_reading()

    def _fail(self, error: OSError) -> None:
        if self._response is not None:
            self._response.fail(error)
        self.close()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        response = self._response
        if response is None or response.complete:
            self._fail(ProtocolError("the provider sent data that answers no request"))
            return
        response.received = True
        try:
            while data:
                room = response.head_room()
                if room < 0:  # past the head: everything counts on the wire
                    response.count_wire(len(data))
                    response.feed(data)
                    return
                # The parser holds a header line until it ends: feed it no more of the
                # head than the limit allows.
                if len(data) <= room:
                    piece, data = data, b""
                else:
                    piece, data = data[:max(room, 1)], data[max(room, 1):]
                response.count_head(len(piece))
                response.feed(piece)
        except OSError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed provider connection is of no further use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._response is None:
            self.origin.forget(self)
            return
        try:
            self._response.connection_lost(reused=self._exchanges > 1)
        except OSError as error:
            self._response.fail(error)


def _without_frames(error: OSError) -> OSError:
    """The error without its tracebacks (theirs and their causes'): kept on a failed
    answer, they would hold the frames that held its bytes."""
    seen: BaseException | None = error
    while seen is not None:
        seen.__traceback__ = None
        seen = seen.__cause__ or seen.__context__
    return error


def _idle_timeout(keep_alive: str | None) -> float:
    """How long an idle connection may be kept: under the provider's ``Keep-Alive: timeout``
    by a margin, and never over ``IDLE_TIMEOUT_S``; 0 when it may not be kept at all."""
    if not keep_alive:
        return IDLE_TIMEOUT_S
    for part in keep_alive.split(","):
        name, _, value = part.partition("=")
        if name.strip().lower() == "timeout":
            try:
                seconds = float(value.strip())
            except ValueError:
                return IDLE_TIMEOUT_S
            return max(0.0, min(IDLE_TIMEOUT_S, seconds - KEEP_ALIVE_MARGIN_S))
    return IDLE_TIMEOUT_S


class _Origin:
    """The connections to one (scheme, host, port)."""

    __slots__ = ("active", "host", "idle", "port", "tls", "waiters")

    def __init__(self, host: str, port: int, tls: bool) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.idle: collections.deque[Connection] = collections.deque()
        self.active = 0  # connections out on an exchange, or being opened
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def forget(self, connection: Connection) -> None:
        with contextlib.suppress(ValueError):  # not idle: its exchange sees the loss
            self.idle.remove(connection)


class _Target:
    """A URL as the pool uses it: its origin and the request head's fixed lines, made once
    per method (``head`` is the POST's)."""

    __slots__ = ("get_head", "head", "origin")

    def __init__(self, origin: _Origin, head: str) -> None:
        self.origin, self.head = origin, head
        self.get_head = "GET" + head.removeprefix("POST")

    def head_of(self, method: str) -> str:
        if method == "GET":
            return self.get_head
        if method == "POST":
            return self.head
        raise ValueError(f"the provider client sends only POST and GET, not {method}")


class Exchange:
    """A request sent and its answer's head in: ``response``; give it back with
    `ConnectionPool.release` whatever happens next."""

    __slots__ = ("connection", "response")

    def __init__(self, connection: Connection, response: Response) -> None:
        self.connection, self.response = connection, response


class ConnectionPool:
    def __init__(self, *, guard: bool, limit_per_host: int = 256,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._guard = guard
        self._limit = limit_per_host
        self._ssl_context = ssl_context
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._targets: dict[str, _Target] = {}
        self._addresses: dict[tuple[str, int], tuple[float, list[AddrInfo]]] = {}
        self._closed = False
        self._sweeper: asyncio.TimerHandle | None = None

    async def open(self, url: str, headers: Mapping[str, str], body: bytes, *,
                   limits: Limits = DEFAULT_LIMITS, wait: float = 60.0) -> Exchange:
        """`acquire` then `send`: the exchange with the answer's head in."""
        connection = await self.acquire(url, wait=wait)
        return await self.send(connection, url, headers, body, limits)

    async def acquire(self, url: str, *, wait: float) -> Connection:
        """A connection to the URL's origin: an idle one, or a new one once fewer than
        ``limit_per_host`` are out; `PoolTimeout` after ``wait`` seconds without one."""
        origin = self._target(url).origin
        while True:
            if origin.active < self._limit:
                origin.active += 1
                break
            try:
                async with asyncio.timeout(wait):
                    await self._wait_turn(origin)
            except TimeoutError as exc:
                raise PoolTimeout(f"all {self._limit} connections to the provider's host "
                                  f"stayed busy for {round(wait * 1000)} ms") from exc
        try:
            return await self._idle_or_new(origin)
        except BaseException:
            origin.active -= 1
            self._wake_next(origin)
            raise

    async def send(self, connection: Connection, url: str, headers: Mapping[str, str],
                   body: bytes | None, limits: Limits, method: str = "POST") -> Exchange:
        """Send the request on ``connection`` and wait for the answer's head. The request
        goes out once: only if ``connection`` was found closed before a byte was written is
        it sent on another (the provider cannot have seen it). ``body`` None: a request
        without content (a GET), sent without Content-Length (RFC 9110 §8.6)."""
        target = self._target(url)
        request = _request_bytes(target.head if method == "POST" else target.head_of(method),
                                 headers, body)
        origin = target.origin
        while not connection.writable():
            connection.close()  # its slot carries over to the next one
            try:
                connection = await self._idle_or_new(origin)
            except BaseException:
                origin.active -= 1
                self._wake_next(origin)
                raise
        response = connection.send(request, limits)
        try:
            await response.head
        except BaseException:
            self.release(connection)
            raise
        return Exchange(connection, response)

    async def get(self, connection: Connection, url: str, headers: Mapping[str, str],
                  limits: Limits, *, wait: float) -> Exchange:
        """`send` a GET. GET is idempotent (RFC 9110 §9.2.2), so one that a reused connection
        closed without answering goes out once more, on a connection acquired as any is
        (within ``wait``); never a second time (RFC 9112 §9.3.1)."""
        try:
            return await self.send(connection, url, headers, None, limits, "GET")
        except NotAnswered:
            pass  # send gave the connection back; its slot is free again
        connection = await self.acquire(url, wait=wait)
        return await self.send(connection, url, headers, None, limits, "GET")

    def release(self, connection: Connection) -> None:
        """Back to the pool if its answer was read to the end and it can carry another;
        closed otherwise (a cancelled or failed exchange tells the provider to stop)."""
        origin = connection.origin
        origin.active -= 1
        if connection.reusable() and not self._closed:
            connection.park(time.monotonic())
            origin.idle.append(connection)
            if self._sweeper is None:
                self._sweeper = connection.loop.call_later(SWEEP_S, self._sweep)
        else:
            connection.close()
        self._wake_next(origin)

    def _sweep(self) -> None:
        """Close the idle connections whose time is up before the next sweep."""
        self._sweeper = None
        soon = time.monotonic() + SWEEP_S
        idle = False
        for origin in self._origins.values():
            for connection in [c for c in origin.idle if c.idle_until <= soon]:
                origin.forget(connection)
                connection.close()
            idle = idle or bool(origin.idle)
        if idle and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()

    # -- connections -------------------------------------------------------------------------

    async def _wait_turn(self, origin: _Origin) -> None:
        waiter = asyncio.get_running_loop().create_future()
        origin.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._wake_next(origin)  # woken, but leaving: the turn passes on
            raise

    @staticmethod
    def _wake_next(origin: _Origin) -> None:
        while origin.waiters:
            waiter = origin.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _idle_or_new(self, origin: _Origin) -> Connection:
        if self._closed:
            raise ConnectError("the gateway is shutting down")
        now = time.monotonic()
        while origin.idle:
            connection = origin.idle.pop()
            if connection.writable() and connection.idle_until > now:
                return connection
            connection.close()
        return await self._connect(origin)

    async def _connect(self, origin: _Origin) -> Connection:
        loop = asyncio.get_running_loop()
        addresses = await self._resolve(origin.host, origin.port)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                sock = await aiohappyeyeballs.start_connection(
                    addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, interleave=1)
        except TimeoutError as exc:
            raise ConnectError(f"no address answered within {CONNECT_TIMEOUT_S:g} s") from exc
        except OSError as exc:
            raise ConnectError(_reason(exc)) from exc
        tls = self._tls() if origin.tls else None
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, connection = await loop.create_connection(
                    lambda: Connection(origin), sock=sock, ssl=tls,
                    server_hostname=origin.host if tls else None)
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise ConnectError(_reason(exc)) from exc
        return connection

    async def _resolve(self, host: str, port: int) -> list[AddrInfo]:
        """The addresses to try, the non-public ones left out when guarded."""
        literal = literal_address(host)
        refused = ConnectError(f"refusing to connect to {host}: not a public address")
        if literal is not None:
            if self._guard and forbidden_address(literal):
                raise refused
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            address: tuple[str, int] | tuple[str, int, int, int] = \
                (str(literal), port, 0, 0) if literal.version == 6 else (str(literal), port)
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
        if self._guard and forbidden_name(host):
            raise refused
        cached = self._addresses.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                  type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectError(f"cannot resolve {host} ({exc.strerror})") from exc
        found: list[AddrInfo] = list(dict.fromkeys(infos))  # type: ignore[arg-type]
        if self._guard:
            found = [info for info in found if not forbidden_address(
                ipaddress.ip_address(str(info[4][0]).split("%")[0]))]
            if not found:
                raise refused
        self._addresses[host, port] = (time.monotonic() + DNS_TTL_S, found)
        return found

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
            self._ssl_context.set_alpn_protocols(["http/1.1"])
        return self._ssl_context

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is not None:
            return target
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectError(f"not an http(s) URL: {parts.scheme}://…")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        key = (parts.scheme, host, port)
        origin = self._origins.get(key) or self._origins.setdefault(key, _Origin(host, port, tls))
        authority = f"[{host}]" if ":" in host else host
        if parts.port is not None and port != (443 if tls else 80):
            authority = f"{authority}:{port}"
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            path = f"{path}?{quote(parts.query, safe='/%:@!$&()*+,;=-._~?')}"
        head = (f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
                f"Accept-Encoding: gzip, deflate\r\n")
        if len(self._targets) >= MAX_TARGETS:
            self._targets.clear()
        target = self._targets[url] = _Target(origin, head)
        return target


def _reason(failure: BaseException) -> str:
    if isinstance(failure, ssl.SSLError):
        return f"TLS: {failure.reason or failure}"
    if isinstance(failure, OSError) and failure.errno:
        return os.strerror(failure.errno)
    return str(failure) or type(failure).__name__


def _request_bytes(head: str, headers: Mapping[str, str], body: bytes | None) -> bytes:
    lines = [head]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise ProtocolError(f"the request header {name!r} is not a valid header")
        lines.append(f"{name}: {value}\r\n")
    if body is None:  # no content: no Content-Length either (RFC 9110 §8.6)
        lines.append("\r\n")
        return "".join(lines).encode()
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "".join(lines).encode() + body
