"""A lean HTTP/1.1 client for provider calls: keep-alive connections pooled per origin,
answers parsed by httptools (llhttp, the parser Node.js uses).

The gateway only POSTs a body and reads the answer whole or as it streams, which needs far
less than a general client: aiohttp's took about three times the CPU per call of this one
(``python -m bench.client_cost``), the largest single cost on the gateway's hot path.

- one pool per origin (scheme, host, port), at most ``limit_per_host`` connections open,
  the most recently used reused first, idle ones closed after ``IDLE_TIMEOUT_S``;
- TLS with the system's trust store; names resolved at most every ``DNS_TTL_S``;
- with ``guard`` on, every address is checked at connect time (the SSRF guard: DNS can change
  after registration); names like ``localhost`` are refused before resolving;
- gzip and deflate answers are decoded; redirects are not followed (a 3xx is the answer);
- a request that meets a kept-alive connection the provider had just closed goes out again
  on another one (the provider closed it before any answer, so it never saw the request);
- a streamed answer held unread beyond ``MAX_BUFFERED`` bytes pauses reading (back-pressure).

Failures are ``OSError``: ``ConnectError`` (no connection) and ``ProtocolError`` (the
connection broke, or the answer is not HTTP); transport.py maps them to domain errors.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import os
import socket
import ssl
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from urllib.parse import quote, urlsplit

import httptools

from ai1net.server.endpoints import forbidden_address, forbidden_name, literal_address

IDLE_TIMEOUT_S = 15.0
DNS_TTL_S = 30.0
MAX_BUFFERED = 1 << 20
MAX_TARGETS = 4096
USER_AGENT = "ai1net-gateway"
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS  # wbits that accept either header


class ConnectError(OSError):
    """No connection to the provider: refused, unresolvable, or not a public address."""


class ProtocolError(OSError):
    """The provider's connection broke, or its answer is not valid HTTP/1.1."""


class ClosedWhileIdle(ProtocolError):
    """A reused connection closed before any byte of the answer: the provider had closed it
    as idle as the request went out, so it never saw the request; the pool sends it again on
    another connection (as Go's net/http does)."""


class Headers(Mapping[str, str]):
    """Response headers looked up by any case; a repeated header's values joined by ", "."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items  # lower-cased names

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Connection(asyncio.Protocol):
    """One keep-alive connection, carrying one exchange at a time; it is also the response
    of the exchange it carries (``status``, ``headers``, ``read``, ``chunks``)."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._exchanges = 0
        self._received = False  # any byte of the current exchange's answer
        self._head: asyncio.Future[None] | None = None  # None while idle
        self._waiter: asyncio.Future[None] | None = None
        self._error: OSError | None = None
        self.status = 0
        self.headers = Headers({})
        self._fields: dict[str, str] = {}
        self._body: list[bytes] = []
        self._buffered = 0
        self._max_buffered = MAX_BUFFERED
        self._paused = False
        self._complete = False
        self._interim = False
        self._until_eof = False
        self._keep_alive = False
        self._decoder: zlib._Decompress | None = None

    # -- the exchange ----------------------------------------------------------------------

    def send(self, request: bytes) -> None:
        self._head = self._loop.create_future()
        self._exchanges += 1
        self._received = False
        self._error = None
        self._complete = self._keep_alive = self._interim = False
        self._body = []
        self._buffered, self._max_buffered = 0, MAX_BUFFERED
        assert self._transport is not None
        self._transport.write(request)

    async def response_head(self) -> None:
        assert self._head is not None
        await self._head

    async def read(self) -> bytes:
        self._max_buffered = sys.maxsize  # the whole answer is wanted: no pausing
        while not self._complete:
            await self._wait()
        body, self._body = self._body, []
        return body[0] if len(body) == 1 else b"".join(body)

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            if self._body:
                chunk = b"".join(self._body)
                self._body, self._buffered = [], 0
                yield chunk
            elif self._complete:
                return
            else:
                await self._wait()

    def reusable(self) -> bool:
        return self._complete and self._keep_alive and not self.closed

    def park(self) -> None:
        """Between exchanges: anything the provider sends now answers no request."""
        self._head = None
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    async def _wait(self) -> None:
        if self._error is None:
            if self._paused:
                self._paused = False
                assert self._transport is not None
                self._transport.resume_reading()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: OSError) -> None:
        self._error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()
        self.close()

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a stream transport

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self._head is None or self._complete:
            self._fail(ProtocolError("the provider sent data that answers no request"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:  # a callback's error comes wrapped
            cause = exc.__context__
            self._fail(cause if isinstance(cause, ProtocolError)
                       else ProtocolError(f"the provider's answer is not valid HTTP ({exc})"))

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed provider connection is of no further use

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._head is None:
            self.origin.forget(self)
        elif not self._complete and self._error is None:
            if self._until_eof and self._head.done():
                self._finish()
            elif self._exchanges > 1 and not self._received:
                self._fail(ClosedWhileIdle("the provider closed the kept-alive connection"))
            else:
                self._fail(ProtocolError("the provider closed the connection before its answer "
                                         "was complete"))

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._fields = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        fields = self._fields
        fields[key] = f"{fields[key]}, {text}" if key in fields else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and the like: the answer follows
            self._interim = True
            return
        self.status, self.headers = status, Headers(self._fields)
        fields = self._fields
        encoding = fields.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
        elif encoding != "identity":
            raise ProtocolError(f"the provider used an unsupported encoding ({encoding})")
        else:
            self._decoder = None
        self._until_eof = "content-length" not in fields \
            and "chunked" not in fields.get("transfer-encoding", "") and status not in (204, 304)
        assert self._head is not None
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                raise ProtocolError("the provider's compressed answer is corrupt") from exc
            if not data:
                return
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > self._max_buffered and not self._paused:
            self._paused = True
            assert self._transport is not None
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._keep_alive = self._parser.should_keep_alive()
        self._finish()

    def _finish(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._body.append(tail)
        self._complete = True
        if self._paused and not self.closed:  # nothing more to hold back; an idle
            self._paused = False                 # connection must still see a close
            assert self._transport is not None
            self._transport.resume_reading()
        self._wake()


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
    """A URL as the pool uses it: its origin and the request head's fixed lines."""

    __slots__ = ("head", "origin")

    def __init__(self, origin: _Origin, head: str) -> None:
        self.origin, self.head = origin, head


class ConnectionPool:
    def __init__(self, *, guard: bool, limit_per_host: int = 256,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._guard = guard
        self._limit = limit_per_host
        self._ssl_context = ssl_context
        self._origins: dict[tuple[str, str, int], _Origin] = {}
        self._targets: dict[str, _Target] = {}
        self._addresses: dict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = {}
        self._closed = False

    async def open(self, url: str, headers: Mapping[str, str], body: bytes) -> Connection:
        """A connection that has sent the request and received the answer's head; give it
        back with `release` whatever happens next."""
        target = self._targets.get(url) or self._target(url)
        request = _request_bytes(target.head, headers, body)
        while True:
            connection = await self._acquire(target.origin)
            try:
                connection.send(request)
                await connection.response_head()
            except ClosedWhileIdle:
                self.release(connection)  # and again on another connection
            except BaseException:
                self.release(connection)
                raise
            else:
                return connection

    def release(self, connection: Connection) -> None:
        """Back to the pool if its answer was read to the end and it can carry another;
        closed otherwise (a cancelled or failed exchange tells the provider to stop)."""
        origin = connection.origin
        origin.active -= 1
        if connection.reusable() and not self._closed:
            connection.park()
            origin.idle.append(connection)
        else:
            connection.close()
        self._wake_next(origin)

    @staticmethod
    def _wake_next(origin: _Origin) -> None:
        while origin.waiters:
            waiter = origin.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        self._closed = True
        for origin in self._origins.values():
            while origin.idle:
                origin.idle.pop().close()

    # -- connections -------------------------------------------------------------------------

    async def _acquire(self, origin: _Origin) -> Connection:
        if self._closed:
            raise ConnectError("the gateway is shutting down")
        while origin.active >= self._limit:
            waiter = asyncio.get_running_loop().create_future()
            origin.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_next(origin)  # woken, but leaving: the turn passes on
                raise
        origin.active += 1
        stale_before = time.monotonic() - IDLE_TIMEOUT_S
        while origin.idle:
            connection = origin.idle.pop()
            if not connection.closed and connection.idle_since > stale_before:
                self._close_stale(origin, stale_before)
                return connection
            connection.close()
        try:
            return await self._connect(origin)
        except BaseException:
            origin.active -= 1
            self._wake_next(origin)
            raise

    @staticmethod
    def _close_stale(origin: _Origin, stale_before: float) -> None:
        """The least recently used connections, when they have idled too long."""
        while origin.idle and origin.idle[0].idle_since <= stale_before:
            origin.idle.popleft().close()

    async def _connect(self, origin: _Origin) -> Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls() if origin.tls else None
        failure: OSError | None = None
        for family, address in await self._resolve(origin.host, origin.port):
            try:
                _, connection = await loop.create_connection(
                    lambda: Connection(origin), address, origin.port, family=family, ssl=tls,
                    server_hostname=origin.host if tls else None)
            except OSError as exc:
                failure = exc
            else:
                return connection
        raise ConnectError(_reason(failure)) from failure

    async def _resolve(self, host: str, port: int) -> list[tuple[int, str]]:
        """The addresses to try, the non-public ones left out when guarded."""
        literal = literal_address(host)
        refused = ConnectError(f"refusing to connect to {host}: not a public address")
        if literal is not None:
            if self._guard and forbidden_address(literal):
                raise refused
            return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
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
        found: list[tuple[int, str]] = list(dict.fromkeys(
            (info[0], str(info[4][0]).split("%")[0]) for info in infos))
        if self._guard:
            found = [(f, a) for f, a in found if not forbidden_address(ipaddress.ip_address(a))]
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
        head = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        if len(self._targets) >= MAX_TARGETS:
            self._targets.clear()
        target = self._targets[url] = _Target(origin, head)
        return target


def _reason(failure: OSError | None) -> str:
    if failure is None:
        return "no address"
    if isinstance(failure, ssl.SSLError):
        return f"TLS: {failure.reason or failure}"
    return os.strerror(failure.errno) if failure.errno else str(failure)


def _request_bytes(head: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [head]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
            raise ProtocolError(f"the request header {name!r} is not a valid header")
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "".join(lines).encode() + body
