"""The ceilings for any Python gateway: pass-through proxies with no logic at all.

``http``: an aiohttp server that forwards each request body to the upstream through one
shared ``ClientSession`` and returns the upstream's bytes. ``grpc``: a grpc.aio server whose
generic handler takes the raw request bytes (no protobuf parsing), makes the same aiohttp call
and returns the raw answer bytes. Any method path is accepted, so a client can call
``/ai1net.v1.GenerateService/Generate`` on it.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import aiohttp
import grpc
from aiohttp import web

SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)
UPSTREAM_KEY = web.AppKey("upstream", str)
JSON_HEADERS = {"Content-Type": "application/json"}


def new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


# -- HTTP ----------------------------------------------------------------------------------


async def forward(request: web.Request) -> web.Response:
    body = await request.read()
    session = request.app[SESSION_KEY]
    async with session.post(request.app[UPSTREAM_KEY], data=body,
                            headers=JSON_HEADERS) as upstream:
        answer = await upstream.read()
        return web.Response(body=answer, status=upstream.status,
                            content_type="application/json")


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SESSION_KEY] = new_session()
    yield
    await app[SESSION_KEY].close()


def build_http_app(upstream: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM_KEY] = upstream
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{tail:.*}", forward)
    return app


# -- gRPC ----------------------------------------------------------------------------------


class RawForwarder(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    """Every unary method: request bytes in, upstream bytes out."""

    def __init__(self, session: aiohttp.ClientSession, upstream: str) -> None:
        self._session = session
        self._upstream = upstream

    def service(self, handler_call_details: grpc.HandlerCallDetails,
                ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        return grpc.unary_unary_rpc_method_handler(self._forward)  # identity (de)serializers

    async def _forward(self, request: bytes, _context: object) -> bytes:
        async with self._session.post(self._upstream, data=request,
                                      headers=JSON_HEADERS) as upstream:
            return await upstream.read()


async def serve_grpc(port: int, upstream: str) -> None:
    session = new_session()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((RawForwarder(session, upstream),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await session.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("http", "grpc"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the mock's /v1/generate URL")
    args = parser.parse_args(argv)
    import uvloop

    if args.kind == "http":
        web.run_app(build_http_app(args.upstream), host="127.0.0.1", port=args.port,
                    access_log=None, print=None, loop=uvloop.new_event_loop())
    else:
        # grpc.aio runs on uvloop too; the gateway does the same.
        uvloop.run(serve_grpc(args.port, args.upstream))


if __name__ == "__main__":
    main()
