"""Storage on SQLite and PostgreSQL: what one gateway wrote, the next one started on the same
database serves — models with working credentials, keys, revocations, deletions.

These tests take ``database_url`` (the fixture behind ``any_harness``) rather than
``any_harness`` itself: each runs two gateways on one database, one after the other.
"""

from __future__ import annotations

import contextlib
import gc
import secrets
import warnings
from typing import Any

import pytest

from ai1net.server.app import build_gateway
from tests.conftest import ADMIN_KEY, Harness, bearer, gateway_settings, run_harness

harness_context = contextlib.asynccontextmanager(run_harness)


async def call(harness: Harness, method: str, path: str, key: str,
               body: Any = None) -> tuple[int, Any]:
    async with harness.http.request(method, harness.http_url + path, json=body,
                                    headers=bearer(key)) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def new_key(harness: Harness, role: str, name: str) -> dict[str, Any]:
    status, body = await call(harness, "POST", "/v1/keys", ADMIN_KEY, {"role": role,
                                                                        "name": name})
    assert status == 201, body
    return dict(body)


def without_stats(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k != "stats"}


async def test_state_survives_a_restart(database_url: str, provider_url: str):
    credential = f"sk-{secrets.token_hex(8)}"
    settings = gateway_settings(database_url)
    async with harness_context(settings) as first:
        provider = await new_key(first, "provider", "prov")
        consumer = await new_key(first, "consumer", "cons")
        doomed = await new_key(first, "consumer", "doomed")
        assert (await call(first, "DELETE", f"/v1/keys/{doomed['id']}", ADMIN_KEY))[0] == 204
        registered = await first.register(
            provider["key"], name="m-auth", type="text",
            endpoint=f"{provider_url}/auth/{credential}", auth_type="bearer",
            credentials={"api_key": credential}, capabilities=["chat"],
            pricing={"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004},
            performance={"avg_latency_ms": 250, "accuracy_score": 0.875},
            specialties=["storage"], cost_efficiency="high", description="survives",
            max_response_bytes=2 << 20, max_event_bytes=4096, max_concurrency=7)
        assert (registered["max_response_bytes"], registered["max_event_bytes"],
                registered["max_concurrency"]) == (2 << 20, 4096, 7)
        await first.register(provider["key"], name="m-gone", type="text",
                             endpoint=f"{provider_url}/ok")
        assert (await call(first, "DELETE", "/v1/models/m-gone", provider["key"]))[0] == 204
        status, _, body = await first.generate(consumer["key"], model="m-auth", input="hi")
        assert status == 200, body
        await first.gateway.ledger.flush()

    async with harness_context(settings) as second:
        # The model, exactly as registered.
        status, model = await call(second, "GET", "/v1/models/m-auth", consumer["key"])
        assert status == 200, model
        assert without_stats(model) == without_stats(registered)
        assert model["has_credentials"] is True
        # Its credential decrypts: the provider only answers when it gets it.
        status, _, body = await second.generate(consumer["key"], model="m-auth", input="hi")
        assert status == 200, body
        assert body["output"] == "ok: hi"
        # Keys still authenticate, both header styles, and ownership holds.
        async with second.http.get(f"{second.http_url}/v1/models",
                                   headers={"x-api-key": provider["key"]}) as resp:
            assert resp.status == 200
        status, patched = await call(second, "PATCH", "/v1/models/m-auth", provider["key"],
                                     {"description": "still mine"})
        assert status == 200 and patched["description"] == "still mine"
        # The revoked key stays revoked.
        status, _, body = await second.generate(doomed["key"], model="m-auth", input="hi")
        assert status == 401 and body["error"]["type"] == "authentication_error"
        status, keys = await call(second, "GET", "/v1/keys", ADMIN_KEY)
        assert doomed["id"] not in {k["id"] for k in keys["keys"]}
        assert {provider["id"], consumer["id"]} <= {k["id"] for k in keys["keys"]}
        status, keys = await call(second, "GET", "/v1/keys?include_revoked=true", ADMIN_KEY)
        assert next(k for k in keys["keys"] if k["id"] == doomed["id"])["revoked"] is True
        # The deleted model stays deleted, and its name is free.
        assert (await call(second, "GET", "/v1/models/m-gone", consumer["key"]))[0] == 404
        await second.register(provider["key"], name="m-gone", type="text",
                              endpoint=f"{provider_url}/ok")
        status, listed = await call(second, "GET", "/v1/models", consumer["key"])
        assert sorted(m["name"] for m in listed["models"]) == ["m-auth", "m-gone"]

    # A third start sees the second one's writes too.
    async with harness_context(settings) as third:
        status, model = await call(third, "GET", "/v1/models/m-auth", consumer["key"])
        assert model["description"] == "still mine"
        status, _, body = await third.generate(consumer["key"], model="m-gone", input="x")
        assert status == 200, body


async def test_a_different_secret_key_refuses_to_start(database_url: str):
    """Stored credentials sealed under one AI1NET_SECRET_KEY cannot be opened with another.

    What happens: ``build_gateway`` (so ``ai1net serve``) fails at start with
    ``ValueError: stored credentials do not match AI1NET_SECRET_KEY`` — it never serves
    with credentials it cannot read. The right key starts it again with nothing lost.
    """
    settings = gateway_settings(database_url)
    async with harness_context(settings) as first:
        provider = await first.key("provider")
        await first.register(provider, name="m-sealed", type="text",
                             endpoint="http://127.0.0.1:9/v1/generate", auth_type="bearer",
                             credentials={"api_key": "sk-sealed"})

    wrong = gateway_settings(database_url, secret_key="a-different-passphrase")
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY") as failure:
        await build_gateway(wrong)
    del failure
    collect_leaks()  # build_gateway leaves its engine open when it fails: see below

    async with harness_context(settings) as again:
        status, model = await call(again, "GET", "/v1/models/m-sealed", ADMIN_KEY)
        assert status == 200 and model["has_credentials"] is True


async def test_a_failed_start_releases_the_database(sqlite_url: str):
    settings = gateway_settings(sqlite_url)
    async with harness_context(settings) as first:
        provider = await first.key("provider")
        await first.register(provider, name="m-sealed", type="text",
                             endpoint="http://127.0.0.1:9/v1/generate", auth_type="bearer",
                             credentials={"api_key": "sk-sealed"})
    wrong = gateway_settings(sqlite_url, secret_key="a-different-passphrase")
    with pytest.raises(ValueError, match="AI1NET_SECRET_KEY") as failure:
        await build_gateway(wrong)
    del failure
    assert collect_leaks() == []


def collect_leaks() -> list[str]:
    """Collect garbage now; the ResourceWarnings of what was left open (not raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


async def test_a_different_secret_key_is_fine_without_stored_credentials(database_url: str):
    """Keys are hashes, not sealed: a new passphrase only matters for provider credentials."""
    async with harness_context(gateway_settings(database_url)) as first:
        consumer = await first.key("consumer")
        provider = await first.key("provider")
        await first.register(provider, name="m-open", type="text",
                             endpoint="http://127.0.0.1:9/v1/generate", auth_type="none")
    other = gateway_settings(database_url, secret_key="a-different-passphrase")
    async with harness_context(other) as second:
        status, model = await call(second, "GET", "/v1/models/m-open", consumer)
        assert status == 200 and model["has_credentials"] is False
