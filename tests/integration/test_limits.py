"""Rate limits and budgets through the API, in-process and shared through Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status

from ai1net.v1 import generate_pb2, generate_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer, two_replicas

INPUT = "x" * 12  # estimated at exactly 3 tokens, as the provider reports
CALL_COST = 0.008  # (3 + 5 tokens) at $1 per 1k


async def priced_model(harness: Harness, provider_url: str) -> None:
    provider = await harness.key("provider", "limits-provider")
    await harness.register(provider, name="priced", type="text", endpoint=provider_url + "/ok",
                           pricing={"input_per_1k_tokens": 1.0, "output_per_1k_tokens": 1.0})


async def call(harness: Harness, key: str) -> tuple[int, dict[str, str], dict]:
    return await harness.generate(key, model="priced", input=INPUT,
                                  parameters={"max_tokens": 5})


async def test_rate_limit_per_key(harness: Harness, provider_url: str):
    await priced_model(harness, provider_url)
    limited = await harness.key("consumer", "limited", rate_limit={"requests_per_minute": 3})
    other = await harness.key("consumer", "other")
    for _ in range(3):
        status, headers, _ = await call(harness, limited)
        assert status == 200
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    status, headers, body = await call(harness, limited)
    assert status == 429
    assert body["error"]["type"] == "rate_limit_exceeded"
    assert int(headers["Retry-After"]) >= 1
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert "x-ratelimit-reset-requests" in headers
    status, _, _ = await call(harness, other)
    assert status == 200


async def test_tokens_per_minute(harness: Harness, provider_url: str):
    await priced_model(harness, provider_url)
    key = await harness.key("consumer", "tpm", rate_limit={"tokens_per_minute": 20})
    statuses = [(await call(harness, key))[0] for _ in range(4)]
    assert statuses[0] == 200
    assert 429 in statuses


async def hammer(harnesses: list[Harness], key: str, n: int) -> Counter[int]:
    results = await asyncio.gather(*(call(harnesses[i % len(harnesses)], key)
                                     for i in range(n)))
    return Counter(status for status, _, _ in results)


async def spent(harness: Harness, key: str) -> float:
    await harness.gateway.ledger.flush()
    return float(await harness.gateway.quota.spent_nanos(
        harness.gateway.keys.authenticate(key).id)) / 1e9


async def test_budget_holds_under_concurrency(harness: Harness, provider_url: str):
    await priced_model(harness, provider_url)
    key = await harness.key("consumer", "budgeted", budget_usd=CALL_COST * 10)
    statuses = await hammer([harness], key, 60)
    assert statuses[200] <= 10
    assert statuses[200] + statuses[402] == 60
    assert await spent(harness, key) <= CALL_COST * 11 + 1e-12
    status, _, body = await call(harness, key)
    assert status == 402
    assert body["error"]["type"] == "budget_exceeded"


async def wait_until_known(harness: Harness, key: str) -> None:
    """The replica knows the key and the model (the change feed reached it)."""
    async with asyncio.timeout(2):
        while True:
            async with harness.http.get(f"{harness.http_url}/v1/models/priced",
                                        headers=bearer(key)) as resp:
                if resp.status == 200:
                    return
            await asyncio.sleep(0.02)


@pytest.mark.postgres
@pytest.mark.redis
async def test_shared_rate_limit_across_two_gateways(provider_url: str):
    async with two_replicas() as (one, two):
        await priced_model(one, provider_url)
        key = await one.key("consumer", "shared-rpm", rate_limit={"requests_per_minute": 6})
        await wait_until_known(two, key)
        statuses = await hammer([one, two], key, 10)
        assert statuses[200] == 6
        assert statuses[429] == 4


@pytest.mark.postgres
@pytest.mark.redis
async def test_shared_budget_across_two_gateways(provider_url: str):
    async with two_replicas() as (one, two):
        await priced_model(one, provider_url)
        key = await one.key("consumer", "shared-budget", budget_usd=CALL_COST * 10)
        await wait_until_known(two, key)
        statuses = await hammer([one, two], key, 60)
        assert statuses[200] <= 10
        assert statuses[200] + statuses[402] == 60
        await two.gateway.ledger.flush()
        assert await spent(one, key) <= CALL_COST * 11 + 1e-12


async def test_patching_a_key_changes_only_what_is_named(harness: Harness):
    await harness.key("consumer", "patched", rate_limit={"requests_per_minute": 7,
                                                          "tokens_per_minute": 70},
                      budget_usd=3.0)
    async with harness.http.get(f"{harness.http_url}/v1/keys",
                                headers=bearer(ADMIN_KEY)) as resp:
        key_id = next(k["id"] for k in (await resp.json())["keys"] if k["name"] == "patched")
    url = f"{harness.http_url}/v1/keys/{key_id}"

    async def patch(body: dict) -> dict:
        async with harness.http.patch(url, json=body, headers=bearer(ADMIN_KEY)) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())

    after = await patch({"budget_usd": 5.0})
    assert after["budget_usd"] == 5.0
    assert after["rate_limit"] == {"requests_per_minute": 7, "tokens_per_minute": 70}
    after = await patch({"rate_limit": {"requests_per_minute": 9}, "name": "renamed"})
    assert after["rate_limit"] == {"requests_per_minute": 9, "tokens_per_minute": 0}
    assert after["budget_usd"] == 5.0
    assert after["name"] == "renamed"
    after = await patch({"budget_usd": None})
    assert after["budget_usd"] is None


async def test_over_grpc_a_rate_limit_is_resource_exhausted_with_retry_info(
        harness: Harness, provider_url: str):
    await priced_model(harness, provider_url)
    key = await harness.key("consumer", "grpc-limited", rate_limit={"requests_per_minute": 1})
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    request = generate_pb2.GenerateRequest(model="priced", input=INPUT)
    await stub.Generate(request, metadata=(("x-api-key", key),))
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.Generate(request, metadata=(("x-api-key", key),))
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(failure.value)
    kinds = {detail.TypeName() for detail in status.details}
    assert {"google.rpc.ErrorInfo", "google.rpc.RetryInfo"} <= kinds
    retry = error_details_pb2.RetryInfo()
    next(d for d in status.details if d.Is(retry.DESCRIPTOR)).Unpack(retry)
    assert retry.retry_delay.seconds >= 1


async def test_over_grpc_an_exhausted_budget_names_its_reason(harness: Harness,
                                                              provider_url: str):
    await priced_model(harness, provider_url)
    key = await harness.key("consumer", "grpc-broke", budget_usd=CALL_COST / 2)
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.Generate(generate_pb2.GenerateRequest(
            model="priced", input=INPUT, parameters={"max_tokens": 5}),
            metadata=(("x-api-key", key),))
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_details_pb2.ErrorInfo()
    status = rpc_status.from_call(failure.value)
    next(d for d in status.details if d.Is(info.DESCRIPTOR)).Unpack(info)
    assert info.reason == "BUDGET_EXCEEDED"
