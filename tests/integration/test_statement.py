"""The monthly earnings statement: per model what the gateway counted and earned, beside
the provider's reports overlapping the month; JSON and CSV; a provider's own, any for an
admin, none for a consumer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from ai1net.v1 import usage_pb2, usage_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer

PRICING = {"input_per_1k_tokens": 1.0, "output_per_1k_tokens": 2.0, "per_request_usd": 0.5}
# The scripted provider's /ok answer: 3 input and 5 output tokens.
EARNED_PER_CALL = (3 * 1.0 + 5 * 2.0) / 1000 + 0.5
MONTH = datetime.now(UTC).strftime("%Y-%m")


async def get(harness: Harness, key: str, accept: str = "application/json",
              **query: str) -> tuple[int, Any]:
    async with harness.http.get(f"{harness.http_url}/v1/usage/statement", params=query,
                                headers={**bearer(key), "Accept": accept}) as resp:
        text = await resp.text()
        return resp.status, text if resp.content_type == "text/csv" else await resp.json()


async def test_a_providers_statement_beside_its_reports(harness: Harness, provider_url: str):
    provider = await harness.key("provider", "seller")
    other = await harness.key("provider", "rival")
    for name, owner in (("sold", provider), ("idle", provider), ("theirs", other)):
        await harness.register(owner, name=name, type="text", endpoint=provider_url + "/ok",
                               pricing=PRICING)
    consumer = await harness.key("consumer")
    for name, calls in (("sold", 3), ("theirs", 1)):
        for _ in range(calls):
            assert (await harness.generate(consumer, model=name, input="hi"))[0] == 200
    start = f"{MONTH}-01T00:00:00Z"
    async with harness.http.post(f"{harness.http_url}/v1/usage/reports", headers=bearer(provider),
                                 json={"model": "idle", "from": start,
                                       "to": f"{MONTH}-02T00:00:00Z",
                                       "usage": {"requests": 7, "tokens_processed": 70}}) as resp:
        assert resp.status == 202

    status, body = await get(harness, provider, month=MONTH)
    assert status == 200, body
    assert body["provider"] and body["from"] == start
    lines = {line["model"]: line for line in body["models"]}
    assert set(lines) == {"sold", "idle"}  # never the rival's
    sold, idle = lines["sold"], lines["idle"]
    assert (sold["requests"], sold["tokens_processed"]) == (3, 24)
    assert sold["earnings_usd"] == pytest.approx(3 * EARNED_PER_CALL)
    assert sold["reported"] == {"requests": 0, "tokens_processed": 0}
    assert sold["difference"] == {"requests": -3, "tokens_processed": -24}
    assert idle["reported"] == {"requests": 7, "tokens_processed": 70}
    assert idle["difference"] == {"requests": 7, "tokens_processed": 70}

    status, text = await get(harness, provider, "text/csv", month=MONTH)
    assert status == 200
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["model"] for row in rows] == ["idle", "sold"]
    assert float(rows[1]["earnings_usd"]) == pytest.approx(3 * EARNED_PER_CALL)
    assert rows[0]["reported_requests"] == "7"

    # An admin names the provider; the provider may not name another.
    rival_id = (await get(harness, other, month=MONTH))[1]["provider"]
    status, body = await get(harness, ADMIN_KEY, month=MONTH, provider=rival_id)
    assert status == 200 and [line["model"] for line in body["models"]] == ["theirs"]
    assert (await get(harness, provider, month=MONTH, provider=rival_id))[0] == 403
    assert (await get(harness, consumer, month=MONTH))[0] == 403
    # Another month holds nothing.
    assert (await get(harness, provider, month="2020-02"))[1]["models"] == []

    stub = usage_pb2_grpc.UsageServiceStub(harness.channel)
    statement = await stub.GetStatement(usage_pb2.GetStatementRequest(month=MONTH),
                                        metadata=(("authorization", f"Bearer {provider}"),),
                                        timeout=10)
    assert [line.model for line in statement.models] == ["idle", "sold"]
    assert statement.models[1].earnings_nanos == round(3 * EARNED_PER_CALL * 1e9)


@pytest.mark.parametrize("month", ["", "2026-13", "2026-1", "26-01", "2026-01-01", "1969-12"])
async def test_a_malformed_month_is_a_400_naming_it(harness: Harness, month: str):
    provider = await harness.key("provider")
    status, body = await get(harness, provider, month=month)
    assert status == 400 and body["error"]["message"].startswith("month:"), body
