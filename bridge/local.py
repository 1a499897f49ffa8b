"""In-process calls: the bridge calling the servicers of the same process without a socket.

Like grpc-gateway's in-process mode, each call runs the same guarded method handlers as a
gRPC call (auth, roles, error statuses: `ai1net.server.auth`), only without the HTTP/2
round trip and the protobuf (de)serialisation. Calls look like grpc.aio calls to
the bridge: failures raise ``aio.AioRpcError``, streams end with ``aio.EOF``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Sequence
from time import monotonic
from typing import Any

import grpc
from grpc import aio

from ai1net.common.deadlines import deadline

Metadata = Sequence[tuple[str, str]]
EOF_MARK: Any = aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
STREAM_BUFFER = 16


class _Aborted(aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: Metadata) -> None:
        super().__init__(details)
        self.error = aio.AioRpcError(code, aio.Metadata(), aio.Metadata(*trailing), details, "")


class LocalContext:
    """The part of ``grpc.aio.ServicerContext`` the servicers and the guard use."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self._metadata = tuple(metadata)
        self._deadline = None if timeout is None else monotonic() + timeout
        self.initial: Metadata = ()
        self.trailing: Metadata = ()
        self.queue: asyncio.Queue[Any] | None = None

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - monotonic())

    def set_trailing_metadata(self, metadata: Metadata) -> None:
        self.trailing = tuple(metadata)

    async def send_initial_metadata(self, metadata: Metadata) -> None:
        self.initial = tuple(metadata)

    async def write(self, message: Any) -> None:
        assert self.queue is not None, "write() is for streaming calls"
        await self.queue.put(message)

    async def abort(self, code: grpc.StatusCode, details: str = "",
                    trailing_metadata: Metadata = ()) -> None:
        raise _Aborted(code, details, trailing_metadata)

    def peer(self) -> str:
        return "in-process"


class _UnaryCall:
    """Awaited, it runs the handler in the caller's task."""

    def __init__(self, handler: Any, request: Any, context: LocalContext,
                 timeout: float | None) -> None:
        self._handler = handler
        self._request = request
        self._context = context
        self._timeout = timeout

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    async def _run(self) -> Any:
        with _AsRpcErrors():
            if self._timeout is None:
                return await self._handler(self._request, self._context)
            async with deadline(self._timeout):
                return await self._handler(self._request, self._context)

    async def initial_metadata(self) -> Metadata:
        return self._context.initial

    async def trailing_metadata(self) -> Metadata:
        return self._context.trailing

    def cancel(self) -> bool:
        return False  # runs in the caller's task: cancelling that task cancels the call


class _StreamCall:
    def __init__(self, handler: Any, request: Any, context: LocalContext,
                 timeout: float | None) -> None:
        self._context = context
        context.queue = asyncio.Queue(STREAM_BUFFER)
        self._timeout = timeout
        self._task = asyncio.create_task(self._produce(handler, request))

    async def _produce(self, handler: Any, request: Any) -> None:
        assert self._context.queue is not None
        ending: Any = EOF_MARK
        try:
            with _AsRpcErrors():
                async with deadline(self._timeout):
                    await handler(request, self._context)
        except aio.AioRpcError as error:
            ending = error
        await self._context.queue.put(ending)

    async def read(self) -> Any:
        assert self._context.queue is not None
        item = await self._context.queue.get()
        if isinstance(item, aio.AioRpcError):
            raise item
        return item

    async def initial_metadata(self) -> Metadata:
        return self._context.initial

    async def trailing_metadata(self) -> Metadata:
        return self._context.trailing

    def cancel(self) -> bool:
        return self._task.cancel()


class _AsRpcErrors:
    """An abort or a deadline as the AioRpcError a gRPC call would raise."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, error: BaseException | None, _tb: object) -> None:
        if isinstance(error, _Aborted):
            raise error.error from None
        if isinstance(error, TimeoutError):
            raise aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, aio.Metadata(),
                                  aio.Metadata(), "Deadline Exceeded", "") from None


class LocalStub:
    """``stub.Method(request, metadata=..., timeout=...)`` for one service, in process."""

    def __init__(self, service: str, handlers: dict[str, Any]) -> None:
        self._service = service
        self._handlers = handlers

    def __getattr__(self, name: str) -> Any:
        handler = self._handlers[f"/{self._service}/{name}"]
        unary = handler.unary_unary is not None

        def call(request: Any, *, metadata: Metadata = (), timeout: float | None = None) -> Any:
            context = LocalContext(metadata, timeout)
            if unary:
                return _UnaryCall(handler.unary_unary, request, context, timeout)
            return _StreamCall(handler.unary_stream, request, context, timeout)

        setattr(self, name, call)  # found by plain attribute lookup from now on
        return call
