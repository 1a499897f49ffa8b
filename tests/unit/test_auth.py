"""The auth guard wraps handlers where they are registered, and fails closed."""

from __future__ import annotations

import grpc
import pytest

from ai1net.server.auth import METHOD_ROLES, AuthGuard


async def answer(_request: object, _context: object) -> str:
    return "ok"


def test_every_gateway_method_is_guarded_and_an_unlisted_one_is_refused_at_start():
    guard = AuthGuard(keys=None)  # type: ignore[arg-type]  # never called here
    handler = grpc.unary_unary_rpc_method_handler(answer)
    guarded = guard.handlers("ai1net.v1.KeyService", {"CreateKey": handler})
    assert guarded["CreateKey"] is not handler
    assert guarded["CreateKey"].unary_unary is not answer
    assert "/ai1net.v1.KeyService/CreateKey" in METHOD_ROLES
    # Health stays open (load balancers call it without a key).
    assert guard.handler("/grpc.health.v1.Health/Check", handler) is handler
    with pytest.raises(RuntimeError, match="METHOD_ROLES"):
        guard.handler("/ai1net.v1.KeyService/DropEverything", handler)
