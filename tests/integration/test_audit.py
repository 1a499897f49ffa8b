"""The audit trail (CONTRACT §2.6): every key, model and usage-report change recorded with
who, when, what and the request id — never a credential or a key — readable by admins
only, over HTTP and gRPC, filtered and paged; the table refuses updates and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import orjson
import pytest
from grpc import aio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ai1net.server.storage import Database
from ai1net.v1 import audit_pb2, audit_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer

PROVIDER_SECRET = "sk-provider-secret-never-in-the-trail"
ROTATED_SECRET = "sk-rotated-secret-never-in-the-trail"
MODEL = {"name": "audited", "type": "text", "endpoint": "http://127.0.0.1:9/v1/generate",
         "credentials": {"api_key": PROVIDER_SECRET},
         "pricing": {"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004}}
PERIOD = {"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"}


async def call(harness: Harness, method: str, path: str, key: str, body: Any = None,
               request_id: str = "") -> tuple[int, Any]:
    headers = {**bearer(key), **({"x-request-id": request_id} if request_id else {})}
    async with harness.http.request(method, harness.http_url + path, json=body,
                                    headers=headers) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def new_key(harness: Harness, role: str, name: str) -> tuple[str, str]:
    """(id, secret) of a new key made by the admin."""
    status, body = await call(harness, "POST", "/v1/keys", ADMIN_KEY, {"role": role,
                                                                       "name": name})
    assert status == 201, body
    return body["id"], body["key"]


async def trail(harness: Harness, query: str = "", key: str = ADMIN_KEY) -> list[dict[str, Any]]:
    status, body = await call(harness, "GET", f"/v1/audit?{query}", key)
    assert status == 200, body
    assert body["next_page_token"] == ""
    return list(body["events"])


async def make_every_change(harness: Harness) -> dict[str, str]:
    """One change of each kind, each with its own request id; the ids and secrets made."""
    made: dict[str, str] = {}
    made["provider"], made["provider_secret"] = await new_key(harness, "provider", "p")
    made["consumer"], made["consumer_secret"] = await new_key(harness, "consumer", "c")
    steps = [
        ("PATCH", f"/v1/keys/{made['consumer']}", ADMIN_KEY,
         {"rate_limit": {"requests_per_minute": 60}, "budget_usd": 5}),
        ("POST", "/v1/models", made["provider_secret"], MODEL),
        ("PATCH", "/v1/models/audited", made["provider_secret"],
         {"credentials": {"api_key": ROTATED_SECRET}, "description": "v2"}),
        ("POST", "/v1/usage/reports", made["provider_secret"],
         {"model": "audited", **PERIOD, "usage": {"requests": 3, "tokens_processed": 30}}),
        ("DELETE", "/v1/models/audited", made["provider_secret"], None),
        ("DELETE", f"/v1/keys/{made['consumer']}", ADMIN_KEY, None),
    ]
    for number, (method, path, key, body) in enumerate(steps):
        status, answer = await call(harness, method, path, key, body, f"req-audit-{number}")
        assert status in (200, 201, 202, 204), answer
    return made


async def test_every_change_is_recorded_with_who_what_and_the_request(harness: Harness):
    made = await make_every_change(harness)
    events = await trail(harness)
    mine = [e for e in events if e["target"] in (made["provider"], made["consumer"], "audited")]
    assert [e["action"] for e in reversed(mine)] == [
        "key.create", "key.create", "key.update", "model.register", "model.update",
        "usage.report", "model.delete", "key.revoke"]
    by_action = {e["action"]: e for e in mine if e["action"] != "key.create"}
    admin_id = by_action["key.update"]["actor_key_id"]
    assert admin_id.startswith("key_") and admin_id not in (made["provider"], made["consumer"])
    for action, number, actor in [("key.update", 0, admin_id),
                                  ("model.register", 1, made["provider"]),
                                  ("model.update", 2, made["provider"]),
                                  ("usage.report", 3, made["provider"]),
                                  ("model.delete", 4, made["provider"]),
                                  ("key.revoke", 5, admin_id)]:
        assert by_action[action]["request_id"] == f"req-audit-{number}", action
        assert by_action[action]["actor_key_id"] == actor, action
    assert by_action["key.update"]["changes"] == {
        "rate_limit": {"requests_per_minute": 60, "tokens_per_minute": 0}, "budget_usd": 5}
    assert by_action["model.register"]["changes"]["pricing.input_per_1k_tokens"] == 0.002
    assert by_action["model.register"]["changes"]["credentials"] == "(changed)"
    assert by_action["model.update"]["changes"] == {"credentials": "(changed)",
                                                    "description": "v2"}
    assert by_action["usage.report"]["changes"]["requests"] == 3
    created = next(e for e in mine if e["action"] == "key.create"
                   and e["target"] == made["consumer"])
    assert created["changes"]["role"] == "consumer"
    now = datetime.now(UTC)
    for event in mine:
        assert now - timedelta(minutes=5) < datetime.fromisoformat(event["at"]) <= now


async def test_no_credential_or_key_ever_enters_the_trail(harness: Harness):
    made = await make_every_change(harness)
    secrets = (PROVIDER_SECRET, ROTATED_SECRET, made["provider_secret"],
               made["consumer_secret"], ADMIN_KEY)
    served = orjson.dumps(await trail(harness)).decode()
    stub = audit_pb2_grpc.AuditServiceStub(harness.channel)
    over_grpc = str(await stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(),
                                               metadata=bearer_metadata(ADMIN_KEY)))
    async with harness.gateway.db.engine.connect() as conn:
        stored = str((await conn.execute(text("SELECT * FROM audit_events"))).all())
    for secret in secrets:
        for where in (served, over_grpc, stored):
            assert secret not in where
            assert secret[:12] not in where  # not even a key's prefix


def bearer_metadata(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def test_admins_only(harness: Harness):
    _, provider = await new_key(harness, "provider", "p")
    _, consumer = await new_key(harness, "consumer", "c")
    for key in (provider, consumer):
        status, body = await call(harness, "GET", "/v1/audit", key)
        assert status == 403 and body["error"]["type"] == "permission_denied", body
    status, _ = await call(harness, "GET", "/v1/audit", "ai1_not-a-key")
    assert status == 401
    stub = audit_pb2_grpc.AuditServiceStub(harness.channel)
    for key in (provider, consumer):
        with pytest.raises(aio.AioRpcError) as failure:
            await stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(),
                                       metadata=bearer_metadata(key), timeout=5)
        assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
    answer = await stub.ListAuditEvents(audit_pb2.ListAuditEventsRequest(action="key.create"),
                                        metadata=bearer_metadata(ADMIN_KEY), timeout=5)
    assert {e.action for e in answer.events} == {"key.create"}
    assert {e.changes["role"] for e in answer.events} >= {"provider", "consumer"}


async def test_filters_and_paging(harness: Harness):
    made = await make_every_change(harness)
    assert {e["action"] for e in await trail(harness, "action=key.revoke")} == {"key.revoke"}
    by_provider = await trail(harness, f"actor={made['provider']}")
    assert {e["action"] for e in by_provider} == {"model.register", "model.update",
                                                  "usage.report", "model.delete"}
    everything = await trail(harness)
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await trail(harness, f"from={later}") == []
    assert await trail(harness, f"to={later}") == everything
    pages, token = [], ""
    while True:
        status, body = await call(harness, "GET",
                                  f"/v1/audit?page_size=3&page_token={token}", ADMIN_KEY)
        assert status == 200, body
        assert len(body["events"]) <= 3
        pages.extend(body["events"])
        token = body["next_page_token"]
        if not token:
            break
    assert pages == everything
    for query, field in [("action=key.delete", "action"), ("page_size=1001", "page_size"),
                         ("from=yesterday", "from")]:
        status, body = await call(harness, "GET", f"/v1/audit?{query}", ADMIN_KEY)
        assert status == 400 and body["error"]["message"].startswith(f"{field}:"), body


async def test_the_table_is_append_only(database_url: str):
    db = Database(database_url)
    try:
        await db.migrate()
        async with db.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO audit_events (id, at, actor_key_id, action, target, request_id, "
                "changes) VALUES ('aud_1', CURRENT_TIMESTAMP, 'system', 'key.revoke', 'k', "
                "'', '{}')"))
        for statement in ("UPDATE audit_events SET target = 'x'", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.engine.begin() as conn:
                    await conn.execute(text(statement))
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT target FROM audit_events"))).all() == [
                ("k",)]
    finally:
        await db.close()
