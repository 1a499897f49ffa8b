"""Roles and ownership (CONTRACT §1, §2.2, §2.4): who may change which model, who may make
keys; partial updates, soft delete, and listing with filters and paging."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc import aio

from ai1net.v1 import keys_pb2, keys_pb2_grpc, registry_pb2, registry_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer

SPEC: dict[str, Any] = {
    "name": "a-model", "type": "text", "endpoint": "http://127.0.0.1:9/v1/generate",
    "pricing": {"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004},
    "capabilities": ["chat", "coding"], "specialties": ["technical explanations"],
    "performance": {"avg_latency_ms": 300, "accuracy_score": 0.9}, "cost_efficiency": "medium",
}


async def call(harness: Harness, method: str, path: str, key: str,
               body: Any = None) -> tuple[int, Any]:
    async with harness.http.request(method, harness.http_url + path, json=body,
                                    headers=bearer(key)) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


def denied(status: int, body: Any) -> bool:
    return (status == 403 and body["error"]["type"] == "permission_denied"
            and body["error"]["code"] == 403)


async def test_provider_b_cannot_change_or_delete_provider_a_model(harness: Harness):
    owner = await harness.key("provider", "provider-a")
    intruder = await harness.key("provider", "provider-b")
    await harness.register(owner, **SPEC)

    assert denied(*await call(harness, "PATCH", "/v1/models/a-model", intruder,
                              {"pricing": {"input_per_1k_tokens": 9.0}}))
    assert denied(*await call(harness, "DELETE", "/v1/models/a-model", intruder))
    status, model = await call(harness, "GET", "/v1/models/a-model", intruder)
    assert status == 200  # reading is for every key
    assert model["pricing"]["input_per_1k_tokens"] == 0.002
    assert model["enabled"] is True

    # The same over gRPC.
    stub = registry_pb2_grpc.RegistryServiceStub(harness.channel)
    metadata = (("x-api-key", intruder),)
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.UpdateModel(registry_pb2.UpdateModelRequest(
            name="a-model", model=registry_pb2.ModelSpec(description="mine now"),
            update_mask={"paths": ["description"]}), metadata=metadata, timeout=5)
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.DeleteModel(registry_pb2.DeleteModelRequest(name="a-model"),
                               metadata=metadata, timeout=5)
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # The owner may; so may an admin.
    status, model = await call(harness, "PATCH", "/v1/models/a-model", owner,
                               {"description": "by the owner"})
    assert status == 200 and model["description"] == "by the owner"
    status, model = await call(harness, "PATCH", "/v1/models/a-model", ADMIN_KEY,
                               {"description": "by an admin"})
    assert status == 200 and model["description"] == "by an admin"
    assert (await call(harness, "DELETE", "/v1/models/a-model", ADMIN_KEY))[0] == 204
    await harness.register(owner, **SPEC)
    assert (await call(harness, "DELETE", "/v1/models/a-model", owner))[0] == 204


async def test_consumer_cannot_register_change_or_delete(harness: Harness):
    provider = await harness.key("provider")
    consumer = await harness.key("consumer")
    await harness.register(provider, **SPEC)
    assert denied(*await call(harness, "POST", "/v1/models", consumer,
                              {**SPEC, "name": "consumer-model"}))
    assert denied(*await call(harness, "PATCH", "/v1/models/a-model", consumer,
                              {"description": "x"}))
    assert denied(*await call(harness, "DELETE", "/v1/models/a-model", consumer))
    status, _ = await call(harness, "GET", "/v1/models/consumer-model", consumer)
    assert status == 404


@pytest.mark.parametrize("role", ["consumer", "provider"])
async def test_only_admin_manages_keys(harness: Harness, role: str):
    key = await harness.key(role)
    assert denied(*await call(harness, "POST", "/v1/keys", key,
                              {"role": "admin", "name": "escalate"}))
    assert denied(*await call(harness, "GET", "/v1/keys", key))
    status, keys = await call(harness, "GET", "/v1/keys", ADMIN_KEY)
    assert status == 200
    mine = next(k for k in keys["keys"] if k["name"] == role)
    assert denied(*await call(harness, "DELETE", f"/v1/keys/{mine['id']}", key))
    assert all(k["name"] != "escalate" for k in keys["keys"])

    stub = keys_pb2_grpc.KeyServiceStub(harness.channel)
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.CreateKey(keys_pb2.CreateKeyRequest(role="admin", name="escalate"),
                             metadata=(("authorization", f"Bearer {key}"),), timeout=5)
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Still usable for what the role may do.
    assert (await call(harness, "GET", "/v1/models", key))[0] == 200


async def test_patch_is_partial(harness: Harness):
    provider = await harness.key("provider")
    before = await harness.register(provider, **SPEC)
    status, after = await call(harness, "PATCH", "/v1/models/a-model", provider,
                               {"pricing": {"input_per_1k_tokens": 0.003}})
    assert status == 200, after
    assert after["pricing"] == {"input_per_1k_tokens": 0.003, "output_per_1k_tokens": 0.004,
                                "per_request_usd": 0.0}
    unchanged = ("name", "type", "endpoint", "auth_type", "capabilities", "specialties",
                 "performance", "cost_efficiency", "owner", "created_at", "enabled")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["updated_at"] >= before["updated_at"]
    # A capability change keeps the new price.
    status, again = await call(harness, "PATCH", "/v1/models/a-model", provider,
                               {"capabilities": ["chat"]})
    assert again["capabilities"] == ["chat"]
    assert again["pricing"]["input_per_1k_tokens"] == 0.003
    assert again["specialties"] == before["specialties"]
    status, fetched = await call(harness, "GET", "/v1/models/a-model", provider)
    assert fetched == again


async def test_delete_then_gone_then_name_free(harness: Harness, provider_url: str):
    provider = await harness.key("provider")
    consumer = await harness.key("consumer")
    await harness.register(provider, **{**SPEC, "endpoint": provider_url + "/ok"})
    status, _, _ = await harness.generate(consumer, model="a-model", input="hi")
    assert status == 200
    assert (await call(harness, "DELETE", "/v1/models/a-model", provider))[0] == 204

    status, body = await call(harness, "GET", "/v1/models/a-model", consumer)
    assert status == 404 and body["error"]["type"] == "not_found"
    status, _, body = await harness.generate(consumer, model="a-model", input="hi")
    assert status == 404 and body["error"]["type"] == "not_found"
    status, listed = await call(harness, "GET", "/v1/models", consumer)
    assert [m["name"] for m in listed["models"]] == []
    assert (await call(harness, "DELETE", "/v1/models/a-model", provider))[0] == 404
    assert (await call(harness, "PATCH", "/v1/models/a-model", provider,
                       {"description": "x"}))[0] == 404

    # The name is free again, even for another provider, and the new model takes traffic.
    other = await harness.key("provider", "other")
    again = await harness.register(other, **{**SPEC, "endpoint": provider_url + "/ok"})
    assert again["owner"] != ""
    status, _, body = await harness.generate(consumer, model="a-model", input="again")
    assert status == 200 and body["output"] == "ok: again"
    # ...and the old owner has no hold on it.
    assert denied(*await call(harness, "DELETE", "/v1/models/a-model", provider))


async def test_list_filters_and_paging(harness: Harness):
    provider = await harness.key("provider")
    consumer = await harness.key("consumer")
    models = [
        ("t-1", "text", ["chat", "coding"], ["Technical explanations"]),
        ("t-2", "text", ["chat"], ["poetry"]),
        ("t-3", "text", ["Coding"], []),
        ("i-1", "image", ["image-generation"], ["logos"]),
        ("a-1", "audio", ["text-to-speech"], []),
    ]
    for name, kind, capabilities, specialties in models:
        await harness.register(provider, **{**SPEC, "name": name, "type": kind,
                                            "capabilities": capabilities,
                                            "specialties": specialties})

    async def names(query: str) -> list[str]:
        status, body = await call(harness, "GET", f"/v1/models?{query}", consumer)
        assert status == 200, body
        assert body["next_page_token"] == ""
        return [m["name"] for m in body["models"]]

    assert await names("") == ["a-1", "i-1", "t-1", "t-2", "t-3"]
    assert await names("type=text") == ["t-1", "t-2", "t-3"]
    assert await names("type=image") == ["i-1"]
    status, body = await call(harness, "GET", "/v1/models?type=video", consumer)
    assert status == 400 and body["error"]["message"].startswith("type:"), body
    assert await names("capability=coding") == ["t-1", "t-3"]  # case-insensitive
    assert await names("capability=chat&type=text") == ["t-1", "t-2"]
    assert await names("capability=chat&type=audio") == []
    assert await names("specialty=technical%20explanations") == ["t-1"]
    assert await names("specialty=logos&type=image") == ["i-1"]

    seen: list[str] = []
    pages = 0
    token = ""
    while True:
        query = "page_size=2" + (f"&page_token={token}" if token else "")
        status, body = await call(harness, "GET", f"/v1/models?{query}", consumer)
        assert status == 200
        pages += 1
        assert len(body["models"]) == (2 if pages < 3 else 1)
        seen += [m["name"] for m in body["models"]]
        token = body["next_page_token"]
        if not token:
            break
    assert pages == 3
    assert seen == ["a-1", "i-1", "t-1", "t-2", "t-3"]

    # Paging composes with a filter.
    status, body = await call(harness, "GET", "/v1/models?type=text&page_size=2", consumer)
    assert [m["name"] for m in body["models"]] == ["t-1", "t-2"]
    status, body = await call(harness, "GET", "/v1/models?type=text&page_size=2&page_token="
                              + body["next_page_token"], consumer)
    assert [m["name"] for m in body["models"]] == ["t-3"]
    assert body["next_page_token"] == ""


async def test_returned_model_has_contract_fields(harness: Harness):
    provider = await harness.key("provider")
    model = await harness.register(provider, **SPEC)
    for name in ("owner", "enabled", "created_at", "updated_at", "stats"):
        assert name in model
    assert set(model["stats"]) >= {"requests", "error_rate", "p50_latency_ms", "health"}
    assert model["owner"]  # the registering provider's key id, not the key
    assert model["owner"] not in (provider, "")


async def test_limits_default_and_are_patchable(harness: Harness):
    provider = await harness.key("provider")
    model = await harness.register(provider, **{**SPEC, "name": "limits-default"})
    assert (model["max_response_bytes"], model["max_event_bytes"],
            model["max_concurrency"]) == (16 << 20, 1 << 20, 256)
    async with harness.http.patch(f"{harness.http_url}/v1/models/limits-default",
                                  json={"max_concurrency": 3}, headers=bearer(provider)) as resp:
        patched = await resp.json()
    assert resp.status == 200, patched
    assert (patched["max_concurrency"], patched["max_response_bytes"]) == (3, 16 << 20)


async def test_a_revoked_key_cannot_be_changed_or_revoked_again(harness: Harness):
    async with harness.http.post(f"{harness.http_url}/v1/keys", json={"role": "consumer"},
                                 headers=bearer(ADMIN_KEY)) as resp:
        key_id = (await resp.json())["id"]
    assert (await call(harness, "DELETE", f"/v1/keys/{key_id}", ADMIN_KEY))[0] == 204
    status, body = await call(harness, "PATCH", f"/v1/keys/{key_id}", ADMIN_KEY,
                              {"name": "back from the dead"})
    assert status == 404 and body["error"]["type"] == "not_found", body
    status, _ = await call(harness, "DELETE", f"/v1/keys/{key_id}", ADMIN_KEY)
    assert status == 404
