"""Secrets stay secret (CONTRACT §1, §2.2): a provider credential never appears in a response,
a log line or the database file; API keys are stored as SHA-256 and listed without the key."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ai1net.demo import provider as demo_provider
from ai1net.v1 import keys_pb2, keys_pb2_grpc, registry_pb2, registry_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer, gateway_settings, run_harness

harness_context = contextlib.asynccontextmanager(run_harness)


def canary() -> str:
    """A credential nobody else would write, so finding it anywhere is a leak."""
    return f"sk-canary-{secrets.token_hex(12)}"


async def text_of(harness: Harness, method: str, path: str, key: str,
                  body: Any = None) -> tuple[int, str]:
    async with harness.http.request(method, harness.http_url + path, json=body,
                                    headers=bearer(key)) as resp:
        return resp.status, await resp.text()


def assert_absent(haystack: str | bytes, *needles: str) -> None:
    for needle in needles:
        probe: str | bytes = needle.encode() if isinstance(haystack, bytes) else needle
        assert probe not in haystack, f"a secret ({needle[:12]}...) leaked"


@contextlib.asynccontextmanager
async def echoing_provider(path_secret: str) -> AsyncIterator[str]:
    """A real HTTP provider that repeats the auth header it got inside its error messages,
    as a clumsy provider might. Yields its base URL."""

    async def fail(request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization") or request.headers.get("x-api-key")
        status = int(request.match_info["status"])
        return web.json_response({"error": {"message": f"bad key {presented}",
                                            "code": status}}, status=status)

    app = web.Application()
    app.router.add_post(f"/{path_secret}/{{status}}", fail)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/{path_secret}"
    finally:
        await runner.cleanup()


async def last_authorization(provider_url: str, http: Any) -> str:
    """The auth header the scripted provider's /echo got last."""
    async with http.get(f"{provider_url}/_events?path=/echo") as resp:
        headers = (await resp.json())["events"][-1]["headers"]
    return str(headers.get("authorization") or headers.get("x-api-key"))


async def test_credential_never_in_a_response(harness: Harness, provider_url: str):
    secret, rotated = canary(), canary()
    provider = await harness.key("provider")
    consumer = await harness.key("consumer")
    spec = {"name": "m-secret", "type": "text", "endpoint": f"{provider_url}/echo",
            "auth_type": "bearer", "credentials": {"api_key": secret}}
    answers = []
    status, text = await text_of(harness, "POST", "/v1/models", provider, spec)
    assert status == 201
    answers.append(text)
    for key in (provider, consumer, ADMIN_KEY):
        answers.append((await text_of(harness, "GET", "/v1/models/m-secret", key))[1])
        answers.append((await text_of(harness, "GET", "/v1/models", key))[1])
    status, text = await text_of(harness, "PATCH", "/v1/models/m-secret", provider,
                                 {"description": "same secret"})
    assert status == 200
    answers.append(text)
    # The credential is stored and sent (the provider echoes it back in its answer), yet the
    # gateway's answer carries only the output.
    status, _, body = await harness.generate(consumer, model="m-secret", input="hi")
    assert status == 200 and body["output"] == "echo", body
    assert await last_authorization(provider_url, harness.http) == f"Bearer {secret}"
    answers.append(str(body))
    status, text = await text_of(harness, "PATCH", "/v1/models/m-secret", provider,
                                 {"auth_type": "api_key", "credentials": {"api_key": rotated}})
    assert status == 200
    answers.append(text)
    status, _, body = await harness.generate(consumer, model="m-secret", input="hi")
    assert status == 200, body
    assert await last_authorization(provider_url, harness.http) == rotated
    answers.append(str(body))

    stub = registry_pb2_grpc.RegistryServiceStub(harness.channel)
    model = await stub.GetModel(registry_pb2.GetModelRequest(name="m-secret"),
                                metadata=(("x-api-key", consumer),), timeout=5)
    assert model.has_credentials
    listed = await stub.ListModels(registry_pb2.ListModelsRequest(),
                                   metadata=(("x-api-key", consumer),), timeout=5)
    answers += [model.SerializeToString().decode(errors="replace"),
                listed.SerializeToString().decode(errors="replace")]

    for answer in answers:
        assert_absent(answer, secret, rotated)
        assert '"credentials"' not in answer
    assert '"has_credentials":true' in answers[0]


BAD_WITH_SECRET = {
    "auth_type-unknown": lambda s: {"auth_type": "basic", "credentials": {"api_key": s}},
    "type-unknown": lambda s: {"type": "video", "credentials": {"api_key": s}},
    "endpoint-ftp": lambda s: {"endpoint": "ftp://x.example/", "credentials": {"api_key": s}},
    "credential-too-long": lambda s: {"credentials": {"api_key": s + "x" * 5000}},
    "credential-beside-a-number": lambda s: {"credentials": {"api_key": 5, "other": s}},
    "no-usable-credential": lambda s: {"credentials": {"first": s, "second": s}},
    "price-negative": lambda s: {"pricing": {"input_per_1k_tokens": -1},
                                 "credentials": {"api_key": s}},
}


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize("bad", BAD_WITH_SECRET.values(), ids=BAD_WITH_SECRET.keys())
async def test_credential_never_in_an_error(harness: Harness, bad: Any, method: str):
    secret = canary()
    provider = await harness.key("provider")
    spec = {"name": "m-bad", "type": "text", "endpoint": "http://127.0.0.1:9/x",
            "auth_type": "bearer", "credentials": {"api_key": canary()}}
    path = "/v1/models"
    if method == "PATCH":
        await harness.register(provider, **spec)
        spec, path = {}, "/v1/models/m-bad"
    status, text = await text_of(harness, method, path, provider, {**spec, **bad(secret)})
    assert status == 400, text
    assert_absent(text, secret)


async def test_credential_never_in_a_log_line(harness: Harness, provider_url: str,
                                              caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    secret, wrong = canary(), canary()
    provider = await harness.key("provider")
    consumer = await harness.key("consumer")
    demo, demo_port = await demo_provider.start(host="127.0.0.1", port=0, api_key=secret)
    try:
        demo_url = f"http://127.0.0.1:{demo_port}/v1/generate"
        for name, endpoint, credential, auth_type in [
            ("demo-right", demo_url, secret, "api_key"),  # the demo accepts it
            ("demo-wrong", demo_url, wrong, "bearer"),  # the demo answers 401
            ("scripted-401", f"{provider_url}/auth/not-this-one", secret, "bearer"),
            ("scripted-500", f"{provider_url}/status/500", secret, "bearer"),
            ("scripted-429", f"{provider_url}/status/429", secret, "api_key"),
            ("scripted-badjson", f"{provider_url}/badjson", secret, "bearer"),
            ("unreachable", "http://127.0.0.1:9/v1/generate", secret, "bearer"),
        ]:
            await harness.register(provider, name=name, type="text", endpoint=endpoint,
                                   auth_type=auth_type, credentials={"api_key": credential})
        expected = {"demo-right": 200, "demo-wrong": 502, "scripted-401": 502,
                    "scripted-500": 502, "scripted-429": 429, "scripted-badjson": 502,
                    "unreachable": 502}
        for name, status in expected.items():
            got, _, body = await harness.generate(consumer, model=name, input="hi")
            assert got == status, (name, body)
            assert_absent(str(body), secret, wrong)
        # Failed registrations and updates with a credential in the body.
        await text_of(harness, "POST", "/v1/models", provider,
                      {"name": "bad", "type": "video", "endpoint": demo_url,
                       "credentials": {"api_key": secret}})
        await text_of(harness, "PATCH", "/v1/models/demo-right", provider,
                      {"auth_type": "basic", "credentials": {"api_key": wrong}})
        await text_of(harness, "PATCH", "/v1/models/demo-right", consumer,
                      {"credentials": {"api_key": wrong}})
        # Unknown keys are refused without being repeated.
        await harness.generate("ai1_" + wrong, model="demo-right", input="hi")
        await harness.gateway.ledger.flush()
    finally:
        await demo.cleanup()

    assert caplog.records, "nothing was logged: the capture is not working"
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
        lines.append(repr(record.__dict__))
    for line in lines:
        assert_absent(line, secret, wrong, consumer, ADMIN_KEY)


@pytest.mark.parametrize("status", [400, 500])
async def test_provider_echoing_the_credential_in_its_error_does_not_leak_it(
        harness: Harness, status: int):
    secret = canary()
    provider = await harness.key("provider")
    consumer = await harness.key("consumer")
    async with echoing_provider("p") as base:
        await harness.register(provider, name="m-echo-error", type="text",
                               endpoint=f"{base}/{status}", auth_type="bearer",
                               credentials={"api_key": secret})
        got, _, body = await harness.generate(consumer, model="m-echo-error", input="hi")
    assert got in (400, 502)
    assert_absent(str(body), secret)


async def test_database_file_holds_no_secret_in_plain_text(tmp_path: Path, provider_url: str):
    secret, token, rotated = canary(), canary(), canary()
    database = tmp_path / "gateway.db"
    async with harness_context(gateway_settings(f"sqlite:///{database}")) as harness:
        provider = await harness.key("provider")
        consumer = await harness.key("consumer")
        await harness.register(provider, name="m-secret", type="text",
                               endpoint=f"{provider_url}/echo", auth_type="bearer",
                               credentials={"api_key": secret})
        await harness.register(provider, name="m-token", type="text",
                               endpoint="http://127.0.0.1:9/v1/generate", auth_type="api_key",
                               credentials={"token": token})
        status, _ = await text_of(harness, "PATCH", "/v1/models/m-token", provider,
                                  {"credentials": {"token": rotated}})
        assert status == 200
        status, _, body = await harness.generate(consumer, model="m-secret", input="hi")
        assert status == 200, body
        assert await last_authorization(provider_url, harness.http) == f"Bearer {secret}"
        await harness.gateway.ledger.flush()
        live = read_database(database)
    stopped = read_database(database)  # after shutdown has checkpointed the WAL
    assert b"m-token" in live and b"m-token" in stopped  # the reads do see the data

    for data in (live, stopped):
        assert_absent(data, secret, token, rotated, consumer, provider, ADMIN_KEY)
        for key in (consumer, provider, ADMIN_KEY):
            assert hashlib.sha256(key.encode()).hexdigest().encode() in data


def read_database(database: Path) -> bytes:
    """The SQLite file and its WAL (where recent writes live until a checkpoint)."""
    parts = [database, database.with_name(database.name + "-wal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


async def test_keys_are_shown_once_and_never_listed(harness: Harness):
    created = []
    for role in ("consumer", "provider", "admin"):
        async with harness.http.post(f"{harness.http_url}/v1/keys", headers=bearer(ADMIN_KEY),
                                     json={"role": role, "name": f"k-{role}"}) as resp:
            assert resp.status == 201
            body = await resp.json()
            assert body["key"].startswith("ai1_")
            created.append(body)
    async with harness.http.delete(f"{harness.http_url}/v1/keys/{created[0]['id']}",
                                   headers=bearer(ADMIN_KEY)) as resp:
        assert resp.status == 204
    for query in ("", "?include_revoked=true"):
        async with harness.http.get(f"{harness.http_url}/v1/keys{query}",
                                    headers=bearer(ADMIN_KEY)) as resp:
            text = await resp.text()
            listed = (await resp.json())["keys"]
        assert listed
        assert all("key" not in entry for entry in listed)
        assert_absent(text, ADMIN_KEY, *(c["key"] for c in created))
        # The prefix is there to tell keys apart, and is not the key.
        assert all(len(entry["prefix"]) < 16 for entry in listed)
    stub = keys_pb2_grpc.KeyServiceStub(harness.channel)
    answer = await stub.ListKeys(keys_pb2.ListKeysRequest(include_revoked=True),
                                 metadata=(("x-api-key", ADMIN_KEY),), timeout=5)
    assert answer.keys and all(k.key == "" for k in answer.keys)
    assert {c["id"] for c in created} <= {k.id for k in answer.keys}
