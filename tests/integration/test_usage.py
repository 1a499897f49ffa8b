"""Usage queries, provider reports and reconciliation, end to end through both APIs."""

from __future__ import annotations

import asyncio
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from grpc import aio

from ai1net.v1 import usage_pb2, usage_pb2_grpc
from tests.conftest import ADMIN_KEY, ROOT, Harness, bearer

# Prices in nano-dollars per 1k tokens; m-a's do not divide evenly, so calls round up.
PRICES = {"m-a": (1_234_567, 2_000_001), "m-b": (500_000, 1_500_000), "m-a-down": (1_000, 1_000)}
OWNERS = {"m-a": "prov-a", "m-a-down": "prov-a", "m-b": "prov-b"}
PATHS = {"m-a": "/ok", "m-b": "/ok", "m-a-down": "/status/500"}
# (consumer, model, calls)
PLAN = [("c1", "m-a", 3), ("c1", "m-b", 2), ("c1", "m-a-down", 2),
        ("c2", "m-a", 1), ("c2", "m-b", 4), ("c2", "m-a-down", 1)]


@dataclass
class Seen:
    """What the generate responses said, summed."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_nanos: int = 0

    def add(self, model: str, status: int, body: dict[str, Any]) -> None:
        self.requests += 1
        if status != 200:
            self.errors += 1
            return
        usage = body["usage"]
        self.input_tokens += usage["input_tokens"]
        self.output_tokens += usage["output_tokens"]
        self.cost_usd += body["cost_usd"]
        price_in, price_out = PRICES[model]
        self.cost_nanos += math.ceil(
            (usage["input_tokens"] * price_in + usage["output_tokens"] * price_out) / 1000)


@dataclass
class Scenario:
    keys: dict[str, str]
    key_ids: dict[str, str]
    by_consumer: dict[str, Seen] = field(default_factory=dict)
    by_provider: dict[str, Seen] = field(default_factory=dict)
    by_model: dict[str, Seen] = field(default_factory=dict)
    total: Seen = field(default_factory=Seen)


async def key_ids(harness: Harness) -> dict[str, str]:
    async with harness.http.get(f"{harness.http_url}/v1/keys",
                                headers=bearer(ADMIN_KEY)) as resp:
        assert resp.status == 200
        return {k["name"]: k["id"] for k in (await resp.json())["keys"]}


async def run_scenario(harness: Harness, provider_url: str) -> Scenario:
    keys = {name: await harness.key("provider", name) for name in ("prov-a", "prov-b")}
    for model, owner in OWNERS.items():
        price_in, price_out = PRICES[model]
        await harness.register(keys[owner], name=model, type="text",
                               endpoint=provider_url + PATHS[model],
                               pricing={"input_per_1k_tokens": price_in / 1e9,
                                        "output_per_1k_tokens": price_out / 1e9})
    keys |= {name: await harness.key("consumer", name) for name in ("c1", "c2")}
    scenario = Scenario(keys=keys, key_ids=await key_ids(harness))
    for consumer, model, calls in PLAN:
        for _ in range(calls):
            status, _, body = await harness.generate(keys[consumer], model=model, input="hi")
            assert status in (200, 502), body
            for seen in (scenario.by_consumer.setdefault(consumer, Seen()),
                         scenario.by_provider.setdefault(OWNERS[model], Seen()),
                         scenario.by_model.setdefault(model, Seen()), scenario.total):
                seen.add(model, status, body)
    return scenario


async def get_usage(harness: Harness, key: str, **query: str) -> tuple[int, dict[str, Any]]:
    async with harness.http.get(f"{harness.http_url}/v1/usage", params=query,
                                headers=bearer(key)) as resp:
        return resp.status, await resp.json()


async def grpc_usage(harness: Harness, key: str, **fields: str) -> usage_pb2.GetUsageResponse:
    stub = usage_pb2_grpc.UsageServiceStub(harness.channel)
    return await stub.GetUsage(usage_pb2.GetUsageRequest(**fields),
                               metadata=(("authorization", f"Bearer {key}"),), timeout=10)


def assert_matches(usage: dict[str, Any], seen: Seen) -> None:
    assert usage["requests"] == seen.requests
    assert usage["errors"] == seen.errors
    assert usage["input_tokens"] == seen.input_tokens
    assert usage["output_tokens"] == seen.output_tokens
    assert usage["tokens_processed"] == seen.input_tokens + seen.output_tokens
    assert usage["cost_usd"] == pytest.approx(seen.cost_usd, rel=1e-12, abs=1e-15)
    assert usage["cost_usd"] == pytest.approx(seen.cost_nanos / 1e9, rel=1e-12, abs=1e-15)


async def test_each_role_sees_what_the_responses_said(any_harness: Harness, provider_url: str):
    harness = any_harness
    scenario = await run_scenario(harness, provider_url)
    keys = scenario.keys
    views = {"admin": (ADMIN_KEY, scenario.total),
             **{c: (keys[c], scenario.by_consumer[c]) for c in ("c1", "c2")},
             **{p: (keys[p], scenario.by_provider[p]) for p in ("prov-a", "prov-b")}}
    for key, seen in views.values():
        status, body = await get_usage(harness, key)
        assert status == 200, body
        assert_matches(body["usage"], seen)
        assert body["groups"] == []
        reply = await grpc_usage(harness, key)
        assert reply.usage.cost_nanos == seen.cost_nanos
        assert reply.usage.requests == seen.requests
    # A provider earns exactly what consumers paid for its models.
    paid_for_a = sum(scenario.by_model[m].cost_nanos for m in ("m-a", "m-a-down"))
    assert (await grpc_usage(harness, keys["prov-a"])).usage.cost_nanos == paid_for_a
    assert scenario.total.errors == 3


@pytest.mark.parametrize("group_by", ["model", "key", "hour", "day"])
async def test_groups_sum_to_the_total(harness: Harness, provider_url: str, group_by: str):
    scenario = await run_scenario(harness, provider_url)
    for key in (ADMIN_KEY, scenario.keys["c1"], scenario.keys["prov-b"]):
        reply = await grpc_usage(harness, key, group_by=group_by)
        assert reply.groups
        for name in ("requests", "errors", "input_tokens", "output_tokens",
                     "tokens_processed", "cost_nanos"):
            assert sum(getattr(g.usage, name) for g in reply.groups) == \
                getattr(reply.usage, name), name
    status, body = await get_usage(harness, ADMIN_KEY, group_by=group_by)
    assert status == 200
    groups = {g["group"]: g["usage"] for g in body["groups"]}
    if group_by == "model":
        assert set(groups) == set(PRICES)
        for model, seen in scenario.by_model.items():
            assert_matches(groups[model], seen)
    elif group_by == "key":
        ids = scenario.key_ids
        assert set(groups) == {ids["c1"], ids["c2"]}
        for consumer in ("c1", "c2"):
            assert_matches(groups[ids[consumer]], scenario.by_consumer[consumer])
    else:
        for label in groups:  # RFC 3339, on the bucket boundary
            moment = datetime.fromisoformat(label)
            assert label.endswith("Z") and moment.minute == moment.second == 0
            assert group_by == "hour" or moment.hour == 0


async def test_consumer_never_sees_another_keys_calls(harness: Harness, provider_url: str):
    scenario = await run_scenario(harness, provider_url)
    c1 = scenario.keys["c1"]
    status, body = await get_usage(harness, c1, group_by="key")
    assert status == 200
    assert [g["group"] for g in body["groups"]] == [scenario.key_ids["c1"]]
    # Filtering by a model c2 also used still shows only c1's calls of it.
    status, body = await get_usage(harness, c1, model="m-b")
    assert status == 200
    assert body["usage"]["requests"] == 2
    status, body = await get_usage(harness, c1, group_by="model")
    assert {g["group"]: g["usage"]["requests"] for g in body["groups"]} == \
        {"m-a": 3, "m-b": 2, "m-a-down": 2}


async def test_provider_sees_only_its_own_models(harness: Harness, provider_url: str):
    scenario = await run_scenario(harness, provider_url)
    prov_a = scenario.keys["prov-a"]
    status, body = await get_usage(harness, prov_a, group_by="model")
    assert status == 200
    assert {g["group"] for g in body["groups"]} == {"m-a", "m-a-down"}
    status, body = await get_usage(harness, prov_a, model="m-a")
    assert status == 200
    assert_matches(body["usage"], scenario.by_model["m-a"])
    status, body = await get_usage(harness, prov_a, model="m-b")
    assert status == 403
    assert body["error"]["type"] == "permission_denied"
    with pytest.raises(aio.AioRpcError) as raised:
        await grpc_usage(harness, prov_a, model="m-b")
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_time_window(harness: Harness, provider_url: str):
    scenario = await run_scenario(harness, provider_url)
    now = datetime.now(UTC)
    around = {"from": (now - timedelta(hours=1)).isoformat(),
              "to": (now + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
    status, body = await get_usage(harness, ADMIN_KEY, **around)
    assert status == 200
    assert_matches(body["usage"], scenario.total)
    later = {"from": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    status, body = await get_usage(harness, ADMIN_KEY, **later)
    assert status == 200
    assert body["usage"]["requests"] == 0
    assert body["usage"]["cost_usd"] == 0


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "yesterday"}, "from"),
    ({"from": "2025-01-01"}, "from"),
    ({"from": "2025-02-30T00:00:00Z"}, "from"),
    ({"to": "2025-01-01T00:00:00"}, "to"),
    ({"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "to"),
    ({"group_by": "week"}, "group_by"),
])
async def test_bad_query_is_a_400_naming_the_field(harness: Harness, query: dict[str, str],
                                                   field: str):
    consumer = await harness.key("consumer")
    status, body = await get_usage(harness, consumer, **query)
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request"
    assert body["error"]["message"].startswith(f"{field}:")


async def report(harness: Harness, key: str, **body: Any) -> tuple[int, dict[str, Any]]:
    async with harness.http.post(f"{harness.http_url}/v1/usage/reports", json=body,
                                 headers=bearer(key)) as resp:
        return resp.status, await resp.json()


async def reconciliation(harness: Harness, key: str, **query: str) -> tuple[int, dict[str, Any]]:
    async with harness.http.get(f"{harness.http_url}/v1/usage/reconciliation", params=query,
                                headers=bearer(key)) as resp:
        return resp.status, await resp.json()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_report_and_reconciliation_round_trip(harness: Harness, provider_url: str):
    scenario = await run_scenario(harness, provider_url)
    prov_a = scenario.keys["prov-a"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    window = {"from": stamp(hour - timedelta(hours=1)), "to": stamp(hour + timedelta(hours=1))}
    seen = scenario.by_model["m-a"]
    # The provider's count, split over two reports inside the window, plus one outside it.
    for start, end, requests, tokens in (
            (hour - timedelta(hours=1), hour, 1, 8),
            (hour, hour + timedelta(hours=1), seen.requests + 2, 40),
            (hour - timedelta(days=2), hour - timedelta(days=1), 999, 999)):
        status, body = await report(harness, prov_a, model="m-a", usage={
            "requests": requests, "tokens_processed": tokens},
            **{"from": stamp(start), "to": stamp(end)})
        assert status == 202, body
        assert body["id"].startswith("rep_")

    status, body = await reconciliation(harness, prov_a, model="m-a", **window)
    assert status == 200, body
    gateway = {"requests": seen.requests,
               "tokens_processed": seen.input_tokens + seen.output_tokens}
    provider = {"requests": seen.requests + 3, "tokens_processed": 48}
    assert body["model"] == "m-a"
    assert body["from"] == window["from"] and body["to"] == window["to"]
    assert body["gateway"] == gateway
    assert body["provider"] == provider
    assert body["difference"] == {k: provider[k] - gateway[k] for k in gateway}

    status, body = await reconciliation(harness, ADMIN_KEY, model="m-a")  # all time
    assert status == 200
    assert body["provider"] == {"requests": seen.requests + 3 + 999,
                                "tokens_processed": 48 + 999}


async def test_reports_and_reconciliation_are_for_owners(harness: Harness, provider_url: str):
    scenario = await run_scenario(harness, provider_url)
    period = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}
    usage = {"requests": 1, "tokens_processed": 2}
    for key in (scenario.keys["prov-b"], scenario.keys["c1"]):
        status, body = await report(harness, key, model="m-a", usage=usage, **period)
        assert status == 403, body
        status, body = await reconciliation(harness, key, model="m-a")
        assert status == 403, body
    status, _ = await report(harness, ADMIN_KEY, model="m-a", usage=usage, **period)
    assert status == 202
    status, _ = await report(harness, scenario.keys["prov-a"], model="nope", usage=usage,
                             **period)
    assert status == 404
    status, body = await report(harness, scenario.keys["prov-a"], model="m-a", usage=usage,
                                **{"from": period["from"]})
    assert status == 400
    assert body["error"]["message"].startswith("to:")
    status, body = await report(harness, scenario.keys["prov-a"], model="m-a", usage=usage,
                                **{"from": period["to"], "to": period["from"]})
    assert status == 400
    status, body = await reconciliation(harness, scenario.keys["prov-a"])
    assert status == 400
    assert body["error"]["message"].startswith("model:")


async def test_cli_usage_table(harness: Harness, provider_url: str):
    scenario = await run_scenario(harness, provider_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ai1net.server.cli", "usage", "--group-by", "model",
        "--target", harness.grpc_target, "--key", ADMIN_KEY, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    rows = {line.split()[0]: line.split()[1:] for line in out.decode().splitlines()[1:]}
    assert set(rows) == {*PRICES, "TOTAL"}
    assert int(rows["TOTAL"][0]) == scenario.total.requests
    assert int(rows["TOTAL"][1]) == scenario.total.errors
    assert float(rows["TOTAL"][5]) == pytest.approx(scenario.total.cost_usd, abs=1e-6)
    assert Counter(int(rows[m][0]) for m in PRICES) == \
        Counter(scenario.by_model[m].requests for m in PRICES)
