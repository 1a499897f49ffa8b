"""Prices for every model type: a flat fee per successful call beside the per-1k-token
prices, charged, reserved by budgets, and shown wherever prices are."""

from __future__ import annotations

from typing import Any

import pytest

from ai1net.v1 import registry_pb2, registry_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer

FEE = 0.02  # USD per image
PRICING = {"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004, "per_request_usd": FEE}
# The scripted provider's /image answer: 3 input tokens, 1 output token.
TOKENS_COST = (3 * 0.002 + 1 * 0.004) / 1000


async def get_json(harness: Harness, path: str, key: str, **params: str) -> Any:
    async with harness.http.get(f"{harness.http_url}{path}", params=params,
                                headers=bearer(key)) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_an_image_call_costs_its_tokens_plus_the_fee(harness: Harness, provider_url: str):
    provider = await harness.key("provider", "painter")
    registered = await harness.register(provider, name="painter-1", type="image",
                                        endpoint=provider_url + "/image", pricing=PRICING)
    assert registered["pricing"] == PRICING
    await harness.register(provider, name="painter-down", type="image",
                           endpoint=provider_url + "/status/500", pricing=PRICING)
    consumer = await harness.key("consumer")

    status, _, body = await harness.generate(consumer, model="painter-1", input="a cat",
                                             routing={"type": "image"})
    assert status == 200, body
    assert body["cost_usd"] == pytest.approx(TOKENS_COST + FEE, abs=1e-12)
    status, _, body = await harness.generate(consumer, model="painter-down", input="a cat")
    assert status == 502, body  # a failed call delivered nothing and pays no fee

    usage = await get_json(harness, "/v1/usage", consumer, group_by="model")
    costs = {group["group"]: group["usage"]["cost_usd"] for group in usage["groups"]}
    assert costs["painter-1"] == pytest.approx(TOKENS_COST + FEE, abs=1e-12)
    assert costs["painter-down"] == 0
    earnings = await get_json(harness, "/v1/usage", provider)
    assert earnings["usage"]["cost_usd"] == pytest.approx(TOKENS_COST + FEE, abs=1e-12)


async def test_the_fee_is_shown_wherever_prices_are(harness: Harness, provider_url: str):
    provider = await harness.key("provider", "painter")
    await harness.register(provider, name="painter-1", type="image",
                           endpoint=provider_url + "/image", pricing=PRICING)
    listed = await get_json(harness, "/v1/models", provider, type="image")
    assert listed["models"][0]["pricing"]["per_request_usd"] == FEE
    assert (await get_json(harness, "/v1/models/painter-1", provider))["pricing"] == PRICING
    openai = await get_json(harness, "/openai/v1/models/painter-1", provider)
    assert openai["pricing"]["per_request_usd"] == FEE
    stub = registry_pb2_grpc.RegistryServiceStub(harness.channel)
    model = await stub.GetModel(registry_pb2.GetModelRequest(name="painter-1"),
                                metadata=(("authorization", f"Bearer {provider}"),), timeout=10)
    assert model.pricing.per_request_usd == FEE

    # A partial update of the fee alone keeps the token prices.
    async with harness.http.patch(f"{harness.http_url}/v1/models/painter-1",
                                  json={"pricing": {"per_request_usd": 0.000000001}},
                                  headers=bearer(provider)) as resp:
        assert resp.status == 200
        assert (await resp.json())["pricing"] == {**PRICING, "per_request_usd": 1e-9}


async def test_a_budget_reserves_the_fee(harness: Harness, provider_url: str):
    """Token prices of 0 reserve nothing: only the fee keeps the key within its budget."""
    provider = await harness.key("provider", "painter")
    await harness.register(provider, name="flat", type="image", endpoint=provider_url + "/image",
                           pricing={"per_request_usd": 0.003})
    consumer = await harness.key("consumer", "capped", budget_usd=0.01)
    statuses = [(await harness.generate(consumer, model="flat", input="x"))[0]
                for _ in range(4)]
    assert statuses == [200, 200, 200, 402]
    me = await get_json(harness, "/v1/keys/me", consumer)
    assert me["spent_usd"] == pytest.approx(0.009, abs=1e-12)
    admin_view = await get_json(harness, "/v1/usage", ADMIN_KEY, model="flat")
    assert admin_view["usage"]["requests"] == 3
