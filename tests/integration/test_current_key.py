"""GET /v1/keys/me (KeyService.GetCurrentKey): any key reads its own limits, budget and spend."""

from __future__ import annotations

import pytest

from ai1net.v1 import keys_pb2, keys_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer


async def me(harness: Harness, key: str) -> tuple[int, dict]:
    async with harness.http.get(f"{harness.http_url}/v1/keys/me", headers=bearer(key)) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("role", ["consumer", "provider"])
async def test_each_role_reads_its_own_key_and_never_a_secret(harness: Harness, role: str):
    key = await harness.key(role, f"me-{role}", rate_limit={"requests_per_minute": 60},
                            budget_usd=3.5)
    status, body = await me(harness, key)
    assert status == 200
    assert body["role"] == role and body["name"] == f"me-{role}"
    assert body["rate_limit"] == {"requests_per_minute": 60, "tokens_per_minute": 0}
    assert body["budget_usd"] == 3.5 and body["spent_usd"] == 0
    assert "key" not in body and key not in str(body)
    assert key.startswith(body["prefix"])
    status, admin = await me(harness, ADMIN_KEY)
    assert status == 200 and admin["role"] == "admin" and admin["id"] != body["id"]


async def test_spend_follows_the_calls(harness: Harness, provider_url: str):
    provider = await harness.key("provider", "me-provider")
    await harness.register(provider, name="me-model", type="text", endpoint=f"{provider_url}/ok",
                           auth_type="none", pricing={"input_per_1k_tokens": 0.001,
                                                      "output_per_1k_tokens": 0.002})
    consumer = await harness.key("consumer", "me-spender", budget_usd=1.0)
    costs = []
    for _ in range(2):
        status, _headers, body = await harness.generate(consumer, model="me-model", input="hi")
        assert status == 200
        costs.append(body["cost_usd"])
    status, body = await me(harness, consumer)
    assert status == 200
    assert body["spent_usd"] == pytest.approx(sum(costs)) and body["spent_usd"] > 0


async def test_unknown_or_revoked_key_is_401(harness: Harness):
    key = await harness.key("consumer", "me-revoked")
    status, body = await me(harness, key)
    async with harness.http.delete(f"{harness.http_url}/v1/keys/{body['id']}",
                                   headers=bearer(ADMIN_KEY)) as resp:
        assert resp.status == 204
    status, body = await me(harness, key)
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert (await me(harness, "ai1_never-issued"))[0] == 401


async def test_the_same_over_grpc(harness: Harness):
    key = await harness.key("consumer", "me-grpc", budget_usd=2.0)
    stub = keys_pb2_grpc.KeyServiceStub(harness.channel)
    answer = await stub.GetCurrentKey(keys_pb2.GetCurrentKeyRequest(),
                                      metadata=[("x-api-key", key)])
    assert answer.role == "consumer" and answer.budget_usd == 2.0 and answer.key == ""
