"""The authorization table (CONTRACT §1), driven through HTTP and gRPC: every method of every
service by admin, the model's owner, another provider, a consumer, no key, a revoked key and
a valid key sent with another scheme (``Authorization: Basic``). Allowed callers get the
method's answer, a known key that may not gets 403 / PERMISSION_DENIED, and the rest
401 / UNAUTHENTICATED. The expected table is tests/support/authz.py, written apart from the
server's own."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
import pytest
from google.protobuf import field_mask_pb2
from grpc import aio

from ai1net.server.app import SERVICE_NAMES
from ai1net.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    generate_pb2,
    generate_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
)
from tests.conftest import ADMIN_KEY, Harness, bearer
from tests.support import authz

PERIOD = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}
counter = itertools.count()


@dataclass
class Target:
    """What one call acts on, made fresh for it: a model the owner registered, a key."""

    model: str
    key_id: str
    new_name: str
    generation_id: str = "gen_none"


@dataclass(frozen=True)
class Call:
    http: Callable[[Target], tuple[str, str, Any]]  # method, path, JSON body
    ok: int
    grpc: Callable[[Target], tuple[str, str, Any]]  # stub, method, request


def spec(name: str) -> registry_pb2.ModelSpec:
    return registry_pb2.ModelSpec(name=name, type="text", endpoint="http://127.0.0.1:9/x")


CALLS: dict[str, Call] = {
    "Generate": Call(lambda t: ("POST", "/v1/generate", {"model": t.model, "input": "hi"}), 200,
                     lambda t: ("generate", "Generate",
                                generate_pb2.GenerateRequest(model=t.model, input="hi"))),
    "GenerateStream": Call(
        lambda t: ("POST", "/v1/generate", {"model": t.model, "input": "hi", "stream": True}),
        200, lambda t: ("generate", "GenerateStream",
                        generate_pb2.GenerateRequest(model=t.model, input="hi"))),
    "RegisterModel": Call(
        lambda t: ("POST", "/v1/models", {"name": t.new_name, "type": "text",
                                          "endpoint": "http://127.0.0.1:9/x"}), 201,
        lambda t: ("registry", "RegisterModel",
                   registry_pb2.RegisterModelRequest(model=spec(t.new_name)))),
    "GetModel": Call(lambda t: ("GET", f"/v1/models/{t.model}", None), 200,
                     lambda t: ("registry", "GetModel", registry_pb2.GetModelRequest(
                         name=t.model))),
    "ListModels": Call(lambda t: ("GET", "/v1/models", None), 200,
                       lambda t: ("registry", "ListModels", registry_pb2.ListModelsRequest())),
    "UpdateModel": Call(
        lambda t: ("PATCH", f"/v1/models/{t.model}", {"description": "changed"}), 200,
        lambda t: ("registry", "UpdateModel", registry_pb2.UpdateModelRequest(
            name=t.model, model=registry_pb2.ModelSpec(description="changed"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])))),
    "DeleteModel": Call(lambda t: ("DELETE", f"/v1/models/{t.model}", None), 204,
                        lambda t: ("registry", "DeleteModel",
                                   registry_pb2.DeleteModelRequest(name=t.model))),
    "CheckModel": Call(lambda t: ("POST", f"/v1/models/{t.model}/check", None), 200,
                       lambda t: ("registry", "CheckModel",
                                  registry_pb2.CheckModelRequest(name=t.model))),
    "GetUsage": Call(lambda t: ("GET", "/v1/usage", None), 200,
                     lambda t: ("usage", "GetUsage", usage_pb2.GetUsageRequest())),
    "ReportUsage": Call(
        lambda t: ("POST", "/v1/usage/reports",
                   {"model": t.model, **PERIOD, "usage": {"requests": 1}}), 202,
        lambda t: ("usage", "ReportUsage", usage_pb2.ReportUsageRequest(
            model=t.model, usage=usage_pb2.UsageCounts(requests=1), to=PERIOD["to"],
            **{"from": PERIOD["from"]}))),
    "GetReconciliation": Call(
        lambda t: ("GET", f"/v1/usage/reconciliation?model={t.model}", None), 200,
        lambda t: ("usage", "GetReconciliation",
                   usage_pb2.GetReconciliationRequest(model=t.model))),
    "GetStatement": Call(
        lambda t: ("GET", "/v1/usage/statement?month=2025-01", None), 200,
        lambda t: ("usage", "GetStatement", usage_pb2.GetStatementRequest(month="2025-01"))),
    "SubmitFeedback": Call(
        lambda t: ("POST", "/v1/feedback", {"generation_id": t.generation_id, "score": 1}), 201,
        lambda t: ("usage", "SubmitFeedback", usage_pb2.SubmitFeedbackRequest(
            generation_id=t.generation_id, score=1))),
    "CreateKey": Call(lambda t: ("POST", "/v1/keys", {"role": "consumer"}), 201,
                      lambda t: ("keys", "CreateKey", keys_pb2.CreateKeyRequest(
                          role="consumer"))),
    "ListKeys": Call(lambda t: ("GET", "/v1/keys", None), 200,
                     lambda t: ("keys", "ListKeys", keys_pb2.ListKeysRequest())),
    "UpdateKey": Call(lambda t: ("PATCH", f"/v1/keys/{t.key_id}", {"name": "renamed"}), 200,
                      lambda t: ("keys", "UpdateKey", keys_pb2.UpdateKeyRequest(
                          id=t.key_id, name="renamed",
                          update_mask=field_mask_pb2.FieldMask(paths=["name"])))),
    "RevokeKey": Call(lambda t: ("DELETE", f"/v1/keys/{t.key_id}", None), 204,
                      lambda t: ("keys", "RevokeKey", keys_pb2.RevokeKeyRequest(id=t.key_id))),
    "GetCurrentKey": Call(lambda t: ("GET", "/v1/keys/me", None), 200,
                          lambda t: ("keys", "GetCurrentKey", keys_pb2.GetCurrentKeyRequest())),
    "ListAuditEvents": Call(lambda t: ("GET", "/v1/audit", None), 200,
                            lambda t: ("audit", "ListAuditEvents",
                                       audit_pb2.ListAuditEventsRequest())),
}


class Table:
    """The keys of the table's callers, and fresh targets for each call."""

    def __init__(self, harness: Harness, provider_url: str) -> None:
        self.harness = harness
        self.endpoint = provider_url + "/ok"
        self.secrets: dict[str, str] = {"admin": ADMIN_KEY}
        self.shared: Target | None = None

    async def start(self) -> None:
        for caller, role in (("owner", "provider"), ("other-provider", "provider"),
                             ("consumer", "consumer"), ("revoked", "consumer")):
            self.secrets[caller] = await self.harness.key(role, caller)
        revoked_id = await self._key_id("revoked")
        status, _ = await self._admin("DELETE", f"/v1/keys/{revoked_id}")
        assert status == 204

    async def target(self, rule: authz.Rule, caller: str) -> Target:
        """A model of the owner's for a call that changes one, a key for one that changes
        keys (one made once serves the calls that only read), a generation of the caller's
        for a rating."""
        n = next(counter)
        changes = rule.name in ("UpdateModel", "DeleteModel")
        if changes or self.shared is None:
            await self.harness.register(self.secrets["owner"], name=f"authz-{n}", type="text",
                                        endpoint=self.endpoint)
        key_id = await self._create_key("consumer") if rule.name in (
            "UpdateKey", "RevokeKey") else ""
        target = Target(model=f"authz-{n}", key_id=key_id, new_name=f"authz-new-{n}")
        if self.shared is None:
            self.shared = target
        if rule.name == "SubmitFeedback" and caller not in authz.UNAUTHENTICATED:
            target.generation_id = await self._generation(caller, self.shared.model)
        return target if changes or key_id or rule.name == "SubmitFeedback" else Target(
            model=self.shared.model, key_id="", new_name=target.new_name)

    async def _generation(self, caller: str, model: str) -> str:
        status, body = await http_call(self.harness, "POST", "/v1/generate",
                                       {"model": model, "input": "hi"},
                                       bearer(self.secrets[caller]))
        assert status == 200, body
        return str(orjson.loads(body)["id"])

    def headers(self, caller: str) -> dict[str, str]:
        if caller == "no-key":
            return {}
        if caller == "basic":  # a valid key, but not as Bearer
            return {"Authorization": f"Basic {ADMIN_KEY}"}
        if caller == "consumer":  # the other header the contract allows
            return {"x-api-key": self.secrets[caller]}
        return bearer(self.secrets[caller])

    async def _create_key(self, role: str) -> str:
        status, body = await self._admin("POST", "/v1/keys", {"role": role})
        assert status == 201, body
        return str(body["id"])

    async def _key_id(self, name: str) -> str:
        _, body = await self._admin("GET", "/v1/keys")
        return next(k["id"] for k in body["keys"] if k["name"] == name)

    async def _admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, answer = await http_call(self.harness, method, path, body, bearer(ADMIN_KEY))
        return status, orjson.loads(answer) if answer else None


async def http_call(harness: Harness, method: str, path: str, body: Any,
                    headers: dict[str, str]) -> tuple[int, Any]:
    async with harness.http.request(method, harness.http_url + path, json=body,
                                    headers=headers) as resp:
        return resp.status, await resp.read()


async def grpc_call(harness: Harness, stub_name: str, method: str, request: Any,
                    metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    stubs = {"generate": generate_pb2_grpc.GenerateServiceStub,
             "registry": registry_pb2_grpc.RegistryServiceStub,
             "usage": usage_pb2_grpc.UsageServiceStub, "keys": keys_pb2_grpc.KeyServiceStub,
             "audit": audit_pb2_grpc.AuditServiceStub}
    call = getattr(stubs[stub_name](harness.channel), method)
    try:
        answer = call(request, metadata=metadata, timeout=10)
        if method == "GenerateStream":
            async for _ in answer:
                pass
        else:
            await answer
    except aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


EXPECTED_HTTP = {None: 401, False: 403}
EXPECTED_GRPC = {None: grpc.StatusCode.UNAUTHENTICATED, False: grpc.StatusCode.PERMISSION_DENIED,
                 True: grpc.StatusCode.OK}


def test_the_table_covers_every_method_of_every_service():
    methods = {f"/{service.full_name}/{method.name}"
               for module in (generate_pb2, registry_pb2, usage_pb2, keys_pb2, audit_pb2)
               for service in module.DESCRIPTOR.services_by_name.values()
               for method in service.methods if service.full_name in SERVICE_NAMES}
    assert methods == set(authz.BY_METHOD)
    assert set(CALLS) == {rule.name for rule in authz.CONTRACT_ROLES}


@pytest.mark.parametrize("rule", authz.CONTRACT_ROLES, ids=lambda rule: rule.name)
async def test_authorization_table(harness: Harness, provider_url: str, rule: authz.Rule):
    table = Table(harness, provider_url)
    await table.start()
    call = CALLS[rule.name]
    outcomes = []
    for caller in authz.CALLERS:
        expected = authz.allowed(rule, caller)
        target = await table.target(rule, caller)
        method, path, body = call.http(target)
        status, answer = await http_call(harness, method, path, body, table.headers(caller))
        want = call.ok if expected else EXPECTED_HTTP[expected]
        outcomes.append((caller, "http", status == want, status, want, answer[:200]))
        target = await table.target(rule, caller)
        stub, name, request = call.grpc(target)
        metadata = tuple((k.lower(), v) for k, v in table.headers(caller).items())
        code = await grpc_call(harness, stub, name, request, metadata)
        outcomes.append((caller, "grpc", code == EXPECTED_GRPC[expected], code,
                         EXPECTED_GRPC[expected], b""))
    wrong = [outcome for outcome in outcomes if not outcome[2]]
    assert not wrong, wrong
