"""The seam between the gateway and providers' HTTP endpoints.

``HttpTransport`` is the real one (one connection pool for every provider, http1.py);
tests may pass any object with the same ``open`` method. Foreign errors (the connection's,
the socket's, time-outs before the first byte) become domain errors here and only here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ai1net.server.errors import UpstreamError, UpstreamTimeout
from ai1net.server.http1 import ConnectError, Connection, ConnectionPool, ProtocolError
from ai1net.server.telemetry import provider_span, records_spans


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes
    # Seconds until the response headers must have arrived.
    first_byte_timeout: float


class TransportResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...


class Transport(Protocol):
    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]: ...

    async def close(self) -> None: ...


class HttpTransport:
    """Provider calls over `ConnectionPool` (http1.py), one pool for every provider."""

    def __init__(self, *, allow_private: bool, limit_per_host: int = 256) -> None:
        self._pool = ConnectionPool(guard=not allow_private, limit_per_host=limit_per_host)

    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]:
        return _Exchange(self._pool, request)

    async def close(self) -> None:
        await self._pool.close()


class _Exchange:
    """One request: the response once its headers are in; on leaving, the connection goes
    back to the pool, or is closed on failure or cancel (which tells the provider to stop).
    With spans exported, the exchange is a client span and the provider's parent."""

    __slots__ = ("_connection", "_pool", "_request", "_span")

    def __init__(self, pool: ConnectionPool, request: ProviderRequest) -> None:
        self._pool = pool
        self._request = request
        self._span: provider_span | None = None

    async def __aenter__(self) -> TransportResponse:
        request, headers = self._request, self._request.headers
        if records_spans():
            self._span = provider_span(request.url)
            headers = dict(headers)
            self._span.start(headers)
        try:
            with _mapped_errors():
                try:
                    async with asyncio.timeout(request.first_byte_timeout):
                        self._connection = await self._pool.open(request.url, headers,
                                                                 request.body)
                except TimeoutError as exc:
                    ms = round(request.first_byte_timeout * 1000)
                    raise UpstreamTimeout(f"the provider sent nothing within {ms} ms") from exc
        except BaseException as exc:
            self._end_span(exc)
            raise
        return _Response(self._connection)

    async def __aexit__(self, _kind: type[BaseException] | None, error: BaseException | None,
                        _tb: object) -> None:
        self._pool.release(self._connection)
        self._end_span(error, self._connection.status)

    def _end_span(self, error: BaseException | None, status: int = 0) -> None:
        if self._span is not None:
            span, self._span = self._span, None
            span.end(status, error)


class _Response:
    """The connection's answer, with its failures mapped."""

    __slots__ = ("_connection", "headers", "status")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.status = connection.status
        self.headers: Mapping[str, str] = connection.headers

    async def read(self) -> bytes:
        with _mapped_errors():
            return await self._connection.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for chunk in self._connection.chunks():
                yield chunk


class _mapped_errors:  # used like a contextlib context manager
    """The connection's and the socket's errors as UpstreamError."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, ConnectError):
            raise UpstreamError(f"the provider could not be reached ({exc})") from exc
        if isinstance(exc, OSError):
            reason = exc if isinstance(exc, ProtocolError) else type(exc).__name__
            raise UpstreamError(f"the provider connection failed ({reason})") from exc
