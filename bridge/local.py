"""In-process calls: the bridge calling the servicers of the same process without a socket.

Like grpc-gateway's in-process mode, each call goes through the same interceptor (auth,
roles, error statuses) and the same method handlers as a gRPC call, only without the
HTTP/2 round trip and the protobuf (de)serialisation. Calls look like grpc.aio calls to
the bridge: failures raise ``aio.AioRpcError``, streams end with ``aio.EOF``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator, Sequence
from typing import Any, NamedTuple

import grpc
from grpc import aio

Metadata = Sequence[tuple[str, str]]
EOF_MARK: Any = aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
STREAM_BUFFER = 16


class _CallDetails(NamedTuple):
    method: str
    invocation_metadata: Metadata


class _Aborted(aio.AbortError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: Metadata) -> None:
        super().__init__(details)
        self.error = aio.AioRpcError(code, aio.Metadata(), aio.Metadata(*trailing), details, "")


class LocalContext:
    """The part of ``grpc.aio.ServicerContext`` the servicers and interceptor use."""

    def __init__(self, metadata: Metadata, timeout: float | None) -> None:
        self._metadata = tuple(metadata)
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._deadline = None if timeout is None else loop.time() + timeout
        self.initial: Metadata = ()
        self.trailing: Metadata = ()
        self.queue: asyncio.Queue[Any] | None = None

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - self._loop.time())

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
    def __init__(self, handler: Any, request: Any, context: LocalContext,
                 timeout: float | None) -> None:
        self._handler = handler
        self._request = request
        self._context = context
        self._timeout = timeout

    async def run(self) -> Any:
        with _as_rpc_errors(self._context):
            if self._timeout is None:
                return await self._handler(self._request, self._context)
            async with asyncio.timeout(self._timeout):
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
            with _as_rpc_errors(self._context):
                async with asyncio.timeout(self._timeout):
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


@contextlib.contextmanager
def _as_rpc_errors(context: LocalContext) -> Generator[None]:
    try:
        yield
    except _Aborted as aborted:
        raise aborted.error from None
    except TimeoutError:
        raise aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, aio.Metadata(),
                              aio.Metadata(), "Deadline Exceeded", "") from None


class LocalStub:
    """``stub.Method(request, metadata=..., timeout=...)`` for one service, in process."""

    def __init__(self, service: str, handlers: dict[str, Any], interceptor: Any) -> None:
        self._service = service
        self._handlers = handlers
        self._interceptor = interceptor

    def __getattr__(self, name: str) -> Any:
        method = f"/{self._service}/{name}"
        raw = self._handlers[method]

        def call(request: Any, *, metadata: Metadata = (), timeout: float | None = None) -> Any:
            return _LocalInvocation(self._interceptor, method, raw, request, metadata, timeout)

        setattr(self, name, call)  # found by plain attribute lookup from now on
        return call


class _LocalInvocation:
    """Runs the interceptor first (it is async), then the call it wraps."""

    def __init__(self, interceptor: Any, method: str, raw: Any, request: Any,
                 metadata: Metadata, timeout: float | None) -> None:
        self._args = (interceptor, method, raw, request, metadata, timeout)
        self._call: _UnaryCall | _StreamCall | None = None

    async def _start(self) -> _UnaryCall | _StreamCall:
        if self._call is None:
            interceptor, method, raw, request, metadata, timeout = self._args

            async def continuation(_details: Any) -> Any:
                return raw

            handler = await interceptor.intercept_service(continuation,
                                                          _CallDetails(method, metadata))
            context = LocalContext(metadata, timeout)
            self._call = _UnaryCall(handler.unary_unary, request, context, timeout) \
                if handler.unary_unary is not None \
                else _StreamCall(handler.unary_stream, request, context, timeout)
        return self._call

    def __await__(self) -> Generator[Any, None, Any]:
        return self._unary().__await__()

    async def _unary(self) -> Any:
        call = await self._start()
        assert isinstance(call, _UnaryCall), "a streaming method read as unary"
        return await call.run()

    async def read(self) -> Any:
        call = await self._start()
        assert isinstance(call, _StreamCall)
        return await call.read()

    async def initial_metadata(self) -> Metadata:
        return await (await self._start()).initial_metadata()

    async def trailing_metadata(self) -> Metadata:
        return await (await self._start()).trailing_metadata()

    def cancel(self) -> bool:
        return self._call.cancel() if self._call is not None else False

