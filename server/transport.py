"""The seam between the gateway and providers' HTTP endpoints.

``AiohttpTransport`` is the real one (one pooled session for every provider);
tests may pass any object with the same ``open`` method. Foreign errors (aiohttp,
sockets, time-outs before the first byte) become domain errors here and only here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from ai1net.server.endpoints import connector_options
from ai1net.server.errors import UpstreamError, UpstreamTimeout


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


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        with _mapped_errors():
            return await self._response.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk


class AiohttpTransport:
    def __init__(self, *, allow_private: bool, limit_per_host: int = 256) -> None:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=limit_per_host,
                                         ttl_dns_cache=30, enable_cleanup_closed=True,
                                         **connector_options(allow_private=allow_private))
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None),
            skip_auto_headers=("User-Agent",), auto_decompress=True)

    def open(self, request: ProviderRequest) -> AbstractAsyncContextManager[TransportResponse]:
        return _Exchange(self._session, request)

    async def close(self) -> None:
        await self._session.close()


class _Exchange:
    """One request: the response once its headers are in; on leaving, the connection goes
    back to the pool, or is closed on failure or cancel (which tells the provider to stop)."""

    __slots__ = ("_request", "_response", "_session")

    def __init__(self, session: aiohttp.ClientSession, request: ProviderRequest) -> None:
        self._session = session
        self._request = request

    async def __aenter__(self) -> TransportResponse:
        request = self._request
        with _mapped_errors():
            try:
                async with asyncio.timeout(request.first_byte_timeout):
                    self._response = await self._session.post(
                        request.url, data=request.body, headers=request.headers)
            except TimeoutError as exc:
                ms = round(request.first_byte_timeout * 1000)
                raise UpstreamTimeout(f"the provider sent nothing within {ms} ms") from exc
        return _AiohttpResponse(self._response)

    async def __aexit__(self, kind: type[BaseException] | None, _error: BaseException | None,
                        _tb: object) -> None:
        if kind is None:
            self._response.release()
        else:
            self._response.close()


class _mapped_errors:  # used like a contextlib context manager
    """aiohttp's and the socket's errors as UpstreamError."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or "connection failed"
            raise UpstreamError(f"the provider could not be reached ({reason})") from exc
        if isinstance(exc, aiohttp.ClientError | OSError):
            raise UpstreamError(f"the provider connection failed ({type(exc).__name__})") from exc
