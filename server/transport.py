"""The seam between the gateway and providers' HTTP endpoints.

``HttpTransport`` is the real one (one connection pool for every provider, http1.py);
tests may pass any object with the same ``open`` (a POST) and ``fetch`` (a GET: health
probes, audio links) methods. Foreign errors (the connection's, the socket's, time-outs
before the first byte, a saturated pool) become domain errors here and only here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ai1net.common.deadlines import deadline
from ai1net.server.errors import Overloaded, UpstreamError, UpstreamTimeout, UpstreamViolation
from ai1net.server.http1 import (
    DEFAULT_LIMITS,
    ConnectError,
    ConnectionPool,
    Disconnected,
    LimitExceeded,
    Limits,
    PoolTimeout,
    ProtocolError,
    Response,
)
from ai1net.server.telemetry import ProviderSpan

# The longest a call waits for a free connection to its provider's host.
POOL_WAIT_S = 2.0


@dataclass(slots=True)  # per call: see docs/DESIGN-NOTES.md
class ProviderRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    # Seconds until the response headers must have arrived.
    first_byte_timeout: float
    limits: Limits = DEFAULT_LIMITS


class TransportResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class Transport(Protocol):
    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]: ...

    def fetch(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]:
        """A GET of ``request.url`` (its body unused), as guarded and bounded as `open`."""
        ...

    async def close(self) -> None: ...


class HttpTransport:
    """Provider calls over `ConnectionPool` (http1.py), one pool for every provider."""

    def __init__(self, *, allow_private: bool, limit_per_host: int = 256,
                 record_spans: bool = False) -> None:
        # record_spans: each provider call is a CLIENT span (when spans are exported).
        self._pool = ConnectionPool(guard=not allow_private, limit_per_host=limit_per_host)
        self._record_spans = record_spans

    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]:
        return _Exchange(self._pool, request, self._record_spans)

    def fetch(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]:
        return _Fetch(self._pool, request, self._record_spans)

    async def close(self) -> None:
        await self._pool.close()


class _Exchange:
    """One request: the response once its headers are in; on leaving, the connection goes
    back to the pool, or is closed on failure or cancel (which tells the provider to stop).
    With spans exported, the exchange is a client span and the provider's parent."""

    __slots__ = ("_connection", "_pool", "_request", "_response", "_span", "_spans")
    _method = "POST"  # `_Fetch`: GET

    def __init__(self, pool: ConnectionPool, request: ProviderRequest, spans: bool) -> None:
        self._pool = pool
        self._request = request
        self._spans = spans
        self._span: ProviderSpan | None = None

    async def __aenter__(self) -> TransportResponse:
        request, headers = self._request, self._request.headers
        if self._spans:
            self._span = ProviderSpan(request.url, self._method)
            headers = dict(headers)
            self._span.start(headers)
        try:
            with _mapped_errors:
                connection = await self._pool.acquire(
                    request.url, wait=min(POOL_WAIT_S, request.first_byte_timeout))
                try:
                    async with deadline(request.first_byte_timeout):
                        if self._method == "POST":
                            exchange = await self._pool.send(connection, request.url, headers,
                                                             request.body, request.limits)
                        else:
                            exchange = await self._pool.get(
                                connection, request.url, headers, request.limits,
                                wait=min(POOL_WAIT_S, request.first_byte_timeout))
                except TimeoutError as exc:
                    ms = round(request.first_byte_timeout * 1000)
                    raise UpstreamTimeout(f"the provider sent nothing within {ms} ms") from exc
        except BaseException as exc:
            self._end_span(exc)
            raise
        self._connection, self._response = exchange.connection, exchange.response
        return _Response(exchange.response)

    async def __aexit__(self, _kind: type[BaseException] | None, error: BaseException | None,
                        _tb: object) -> None:
        self._pool.release(self._connection)
        self._end_span(error, self._response.status)

    def _end_span(self, error: BaseException | None, status: int = 0) -> None:
        if self._span is not None:
            span, self._span = self._span, None
            span.end(status, error)


class _Fetch(_Exchange):
    """A GET exchange: a health probe, an audio link (retried once on a reused connection
    closed without answering, as `ConnectionPool.get` says)."""

    __slots__ = ()
    _method = "GET"


class _Response:
    """The exchange's answer, with its failures mapped."""

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: Response) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        with _mapped_errors:
            return await self._response.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        with _mapped_errors:
            async for chunk in self._response.chunks():
                yield chunk


class _MappedErrors:
    """The connection's and the socket's errors as domain errors (a class rather than a
    generator: it wraps every provider read)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, LimitExceeded):
            raise UpstreamViolation(str(exc), kind=exc.kind) from exc
        if isinstance(exc, ProtocolError):
            raise UpstreamViolation(str(exc), kind="protocol") from exc
        if isinstance(exc, PoolTimeout):
            raise Overloaded(f"the gateway has no free connection to the provider: {exc}",
                             scope="pool") from exc
        if isinstance(exc, ConnectError):
            raise UpstreamError(f"the provider could not be reached ({exc})") from exc
        if isinstance(exc, OSError):
            reason = exc if isinstance(exc, Disconnected) else type(exc).__name__
            raise UpstreamError(f"the provider connection failed ({reason})") from exc


_mapped_errors = _MappedErrors()
