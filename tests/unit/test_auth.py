"""The auth guard wraps handlers where they are registered, and fails closed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest.mock import MagicMock

import grpc
import pytest
from grpc import aio

from ai1net.bridge.local import LocalContext
from ai1net.server import audit, auth
from ai1net.server.auth import METHOD_ROLES, AuthGuard, presented_key
from ai1net.server.errors import PermissionDenied, Unauthenticated
from ai1net.server.keys import ROLES, Principal
from ai1net.server.services.audit import AuditServicer
from ai1net.server.services.keys import KeyServicer
from ai1net.server.services.registry import RegistryServicer
from ai1net.server.services.usage import UsageServicer
from tests.support import authz


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


# -- the guard alone, and the servicers alone (defence in depth: each refuses by itself) ---


def principal(role: str, key_id: str = "") -> Principal:
    return Principal(id=key_id or f"key_{role}", name=role, role=role, key_hash=f"h-{role}",
                     prefix="ai1_", requests_per_minute=0, tokens_per_minute=0,
                     budget_nanos=None, created_at=datetime.now(UTC))


class Keys:
    """The one KeyStore method the guard calls: a key per role, secret = "secret-<role>"."""

    async def authenticate_fresh(self, presented: str | None) -> Principal:
        if not presented:
            raise Unauthenticated("missing API key")
        role = presented.removeprefix("secret-")
        if role not in ROLES:
            raise Unauthenticated("unknown or revoked API key")
        return principal(role)


@pytest.mark.parametrize("rule", authz.CONTRACT_ROLES, ids=lambda rule: rule.name)
async def test_the_guard_alone_admits_exactly_the_contracts_roles(rule: authz.Rule):
    """The guard in front of a handler that would serve anyone."""
    guard = AuthGuard(keys=Keys())  # type: ignore[arg-type]  # duck-typed
    handler = guard.handler(rule.method, grpc.unary_unary_rpc_method_handler(answer))
    for role in ROLES:
        context = LocalContext((("authorization", f"Bearer secret-{role}"),), None)
        if role in rule.roles:
            assert await handler.unary_unary(object(), context) == "ok"
        else:
            with pytest.raises(aio.AbortError) as refused:
                await handler.unary_unary(object(), context)
            assert refused.value.error.code() == grpc.StatusCode.PERMISSION_DENIED, role
    for metadata in ((), (("authorization", "Basic secret-admin"),),
                     (("authorization", "secret-admin"),), (("x-api-key", ""),)):
        with pytest.raises(aio.AbortError) as refused:
            await handler.unary_unary(object(), LocalContext(metadata, None))
        assert refused.value.error.code() == grpc.StatusCode.UNAUTHENTICATED, metadata


@pytest.mark.parametrize(("header", "key"), [
    (("authorization", "Bearer k1"), "k1"), (("authorization", "bearer  k1 "), "k1"),
    (("x-api-key", " k1 "), "k1"), (("authorization", "Basic k1"), None),
    (("authorization", "Bearer "), None), (("authorization", "k1"), None),
    (("x-api-key", ""), None), (("cookie", "k1"), None),
])
def test_only_bearer_or_x_api_key_present_a_key(header: tuple[str, str], key: str | None):
    assert presented_key((header,)) == key


def servicers() -> dict[str, Any]:
    """Every servicer, built with nothing behind it: a refusal must come before any use."""
    none: Any = None
    return {"KeyService": KeyServicer(keys=none, quota=none),
            "RegistryService": RegistryServicer(registry=none, stats=none, checker=none),
            "UsageService": UsageServicer(db=none, ledger=none, feedback=none),
            "AuditService": AuditServicer(db=none)}


@pytest.mark.parametrize("rule", [r for r in authz.CONTRACT_ROLES if r.roles != authz.ANY],
                         ids=lambda rule: rule.name)
async def test_each_servicer_checks_the_role_itself(rule: authz.Rule):
    """Without the guard (a table entry widened by mistake), the servicer still refuses."""
    service = rule.method.split("/")[1].rpartition(".")[2]
    servicer = servicers()[service]
    for role in set(ROLES) - rule.roles:
        token = auth._principal.set(principal(role))
        try:
            with pytest.raises(PermissionDenied):
                await getattr(servicer, rule.name)(MagicMock(), None)
        finally:
            auth._principal.reset(token)


async def test_the_guard_hands_the_call_its_caller_request_id_and_audit_actor():
    """What the servicer behind the guard sees: the principal, the request id (at most 64
    characters, the audit column's width) and the audit trail's actor."""
    seen: dict[str, Any] = {}

    async def look(_request: object, _context: object) -> str:
        seen.update(principal=auth.current_principal(), request_id=auth.current_request_id(),
                    actor=audit._actor.get())
        return "ok"

    guard = AuthGuard(keys=Keys())  # type: ignore[arg-type]
    handler = guard.handler("/ai1net.v1.KeyService/ListKeys",
                            grpc.unary_unary_rpc_method_handler(look))
    long_id = "r" * 100
    metadata = (("x-api-key", "secret-admin"), ("x-request-id", long_id))
    assert await handler.unary_unary(object(), LocalContext(metadata, None)) == "ok"
    assert seen["principal"].role == "admin"
    assert seen["request_id"] == long_id[:64]
    assert seen["actor"] == audit.Actor("key_admin", long_id[:64])


async def test_a_failure_inside_a_method_becomes_its_status_and_never_leaks():
    async def fail(_request: object, _context: object) -> str:
        raise PermissionDenied("model 'x' belongs to another provider")

    async def crash(_request: object, _context: object) -> str:
        raise KeyError("secret detail")

    guard = AuthGuard(keys=Keys())  # type: ignore[arg-type]
    context = LocalContext((("x-api-key", "secret-admin"),), None)
    for behaviour, code, message in ((fail, grpc.StatusCode.PERMISSION_DENIED, "belongs"),
                                     (crash, grpc.StatusCode.INTERNAL, "internal error")):
        handler = guard.handler("/ai1net.v1.KeyService/ListKeys",
                                grpc.unary_unary_rpc_method_handler(behaviour))
        with pytest.raises(aio.AbortError) as failed:
            await handler.unary_unary(object(), context)
        assert failed.value.error.code() == code
        assert message in failed.value.error.details()
        assert "secret detail" not in failed.value.error.details()
