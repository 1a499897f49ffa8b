"""Every bad input of CONTRACT §2, §2.2 and §2.4 gets its 4xx in the JSON envelope, never a
500, and the server keeps answering. Over gRPC the same checks give INVALID_ARGUMENT with a
google.rpc.Status detail naming the field."""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2, status_pb2
from grpc import aio

from ai1net.v1 import generate_pb2, generate_pb2_grpc, registry_pb2, registry_pb2_grpc
from tests.conftest import ADMIN_KEY, Harness, bearer, gateway_settings, run_harness

TYPES = {400: "invalid_request", 401: "authentication_error", 403: "permission_denied",
         404: "not_found", 405: "method_not_allowed", 409: "conflict",
         413: "payload_too_large", 415: "unsupported_media_type"}
MISSING = object()  # a field the case removes from the base body
OK_ENDPOINT = "http://127.0.0.1:9/v1/generate"  # never called: registration only
MIB = 1024 * 1024


@dataclass(frozen=True)
class Bad:
    """One bad request and the error it must get."""

    id: str
    status: int
    field: str | None = None  # the field the message must name
    method: str = "POST"
    path: str = "/v1/generate"
    key: str | None = "consumer"  # a role, "admin", "none", or a literal header set below
    body: Any = None  # JSON to send (merged over the path's base body when a dict)
    raw: bytes | None = None  # or these bytes, as application/json unless headers say
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    base: bool = True  # merge `body` over the path's valid base body
    says: str = ""  # a phrase the message must contain


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied one level deep; MISSING deletes."""
    out = dict(base)
    for name, value in changes.items():
        if value is MISSING:
            out.pop(name, None)
        elif isinstance(value, dict) and isinstance(out.get(name), dict):
            out[name] = merged(out[name], value)
        else:
            out[name] = value
    return out


GENERATE_BASE = {"model": "m-ok", "input": "hi"}
MODEL_BASE = {"name": "m-new", "type": "text", "endpoint": OK_ENDPOINT}


def gen(id: str, body: dict[str, Any], field: str, **kw: Any) -> Bad:
    return Bad(id=id, status=400, field=field, body=body, **kw)


def reg(id: str, body: dict[str, Any], field: str, **kw: Any) -> Bad:
    return Bad(id=id, status=400, field=field, path="/v1/models", key="provider", body=body,
               **kw)


def key(id: str, body: dict[str, Any], field: str) -> Bad:
    return Bad(id=id, status=400, field=field, path="/v1/keys", key="admin", body=body,
               base=False)


GENERATE_CASES = [
    gen("input-missing", {"input": MISSING}, "input"),
    gen("input-null", {"input": None}, "input"),
    gen("input-empty", {"input": ""}, "input"),
    gen("input-number", {"input": 5}, "input"),
    gen("input-list", {"input": ["hi"]}, "input"),
    gen("input-object", {"input": {"text": "hi"}}, "input"),
    gen("parameters-string", {"parameters": "max_tokens=5"}, "parameters"),
    gen("parameters-list", {"parameters": [1, 2]}, "parameters"),
    # Deeper than a Struct is read (100 levels), then deeper than the encoder goes (254).
    *(Bad(f"parameters-{depth}-deep", 400, "parameters", says="nested more than",
          raw=b'{"input": "hi", "parameters": ' + b'{"a": ' * depth + b"1" + b"}" * depth
          + b"}") for depth in (150, 400)),
    gen("model-number", {"model": 5}, "model"),
    gen("model-list", {"model": ["m-ok"]}, "model"),
    gen("stream-string", {"stream": "yes"}, "stream"),
    gen("stream-number", {"stream": 1}, "stream"),
    gen("fallbacks-string", {"fallbacks": "m-ok"}, "fallbacks"),
    gen("fallbacks-numbers", {"fallbacks": [1]}, "fallbacks"),
    gen("routing-string", {"model": MISSING, "routing": "fast"}, "routing"),
    gen("routing.strategy-number", {"model": MISSING, "routing": {"strategy": 5}},
        "routing.strategy"),
    gen("routing.strategy-unknown", {"model": MISSING, "routing": {"strategy": "fastest"}},
        "routing.strategy"),
    gen("routing.type-number", {"model": MISSING, "routing": {"type": 1}}, "routing.type"),
    gen("routing.type-unknown", {"model": MISSING, "routing": {"type": "video"}},
        "routing.type"),
    gen("routing.capabilities-string", {"model": MISSING, "routing": {"capabilities": "chat"}},
        "routing.capabilities"),
    gen("routing.specialties-numbers", {"model": MISSING, "routing": {"specialties": [1]}},
        "routing.specialties"),
    gen("routing.max_latency_ms-string",
        {"model": MISSING, "routing": {"max_latency_ms": "fast"}}, "routing.max_latency_ms"),
    gen("routing.max_latency_ms-negative",
        {"model": MISSING, "routing": {"max_latency_ms": -1}}, "routing.max_latency_ms"),
    gen("routing.max_price-negative",
        {"model": MISSING, "routing": {"max_price_per_1k_tokens": -0.5}},
        "routing.max_price_per_1k_tokens"),
    gen("routing.max_price-bool",
        {"model": MISSING, "routing": {"max_price_per_1k_tokens": True}},
        "routing.max_price_per_1k_tokens"),
    *(gen(f"max_tokens={value!r}", {"parameters": {"max_tokens": value}},
          "parameters.max_tokens") for value in (0, -1, 1.5, "10", True, [5])),
    *(gen(f"temperature={value!r}", {"parameters": {"temperature": value}},
          "parameters.temperature") for value in (3, -0.1, 2.0001, "hot", True, [0.5])),
    *(gen(f"{name}-not-string", {"parameters": {name: value}}, f"parameters.{name}")
      for name, value in (("size", 512), ("voice", 1), ("format", ["wav"]),
                          ("size", {"w": 1}), ("voice", False))),
    Bad("unknown-model", 404, "model", body={"model": "no-such-model"}, says="no-such-model"),
    Bad("unknown-fallback", 404, "fallbacks", body={"fallbacks": ["no-such-fallback"]},
        says="no-such-fallback"),
]

BODY_CASES = [
    Bad("invalid-json", 400, raw=b'{"input": ', says="JSON"),
    Bad("empty-body", 400, raw=b"", says="JSON"),
    Bad("nan-literal", 400, raw=b'{"input": "hi", "parameters": {"temperature": NaN}}'),
    Bad("lone-surrogate", 400, raw=b'{"input": "\\ud800"}'),
    Bad("body-array", 400, body=[GENERATE_BASE], base=False, says="object"),
    Bad("body-string", 400, body="hi", base=False, says="object"),
    Bad("body-number", 400, body=5, base=False, says="object"),
    Bad("body-null", 400, raw=b"null", says="object"),
    Bad("models-body-array", 400, path="/v1/models", key="provider", body=[MODEL_BASE],
        base=False, says="object"),
    Bad("keys-invalid-json", 400, path="/v1/keys", key="admin", raw=b"{role", says="JSON"),
    Bad("over-1-mib", 413, raw=b'{"input": "' + b"a" * MIB + b'"}'),
    Bad("models-over-1-mib", 413, path="/v1/models", key="provider",
        raw=b'{"name": "' + b"a" * MIB + b'"}'),
    Bad("text-plain", 415, raw=b'{"input": "hi"}', headers={"Content-Type": "text/plain"}),
    Bad("form-encoded", 415, raw=b"input=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Bad("models-xml", 415, path="/v1/models", key="provider", raw=b"<model/>",
        headers={"Content-Type": "application/xml"}),
    Bad("timeout-header", 400, "x-request-timeout-ms", body={},
        headers={"x-request-timeout-ms": "soon"}),
    Bad("grpc-timeout-header", 400, "grpc-timeout", body={}, headers={"grpc-timeout": "1 day"}),
]

PATH_CASES = [
    Bad("unknown-v1-path", 404, method="GET", path="/v1/nope", says="/v1/nope"),
    Bad("unknown-root-path", 404, method="GET", path="/nope", key="none"),
    Bad("unknown-nested-path", 404, method="GET", path="/v1/models/a/b"),
    Bad("post-unknown-path", 404, path="/v1/generates", body={}),
    Bad("get-generate", 405, method="GET", path="/v1/generate"),
    Bad("put-model", 405, method="PUT", path="/v1/models/m-ok", key="provider", body={},
        base=False),
    Bad("delete-models", 405, method="DELETE", path="/v1/models", key="provider"),
    Bad("post-healthz", 405, path="/healthz", key="none", body={}, base=False),
    Bad("patch-keys", 405, method="PATCH", path="/v1/keys", key="admin", body={}, base=False),
]

AUTH_CASES = [
    Bad("no-key", 401, body={}, key="none"),
    Bad("no-key-models", 401, method="GET", path="/v1/models", key="none"),
    Bad("no-key-keys", 401, method="GET", path="/v1/keys", key="none"),
    Bad("unknown-bearer", 401, body={}, key="none",
        headers={"Authorization": "Bearer ai1_not-a-key"}),
    Bad("unknown-x-api-key", 401, body={}, key="none", headers={"x-api-key": "ai1_not-a-key"}),
    Bad("basic-scheme", 401, body={}, key="none", headers={"Authorization": "Basic dXNlcjpwdw=="}),
    Bad("empty-bearer", 401, body={}, key="none", headers={"Authorization": "Bearer "}),
]

REGISTER_CASES = [
    reg("type-unknown", {"type": "video"}, "type"),
    reg("type-number", {"type": 5}, "type"),
    reg("type-missing", {"type": MISSING}, "type"),
    reg("auth_type-unknown", {"auth_type": "basic"}, "auth_type"),
    reg("auth_type-number", {"auth_type": 1}, "auth_type"),
    reg("cost_efficiency-unknown", {"cost_efficiency": "extreme"}, "cost_efficiency"),
    reg("cost_efficiency-number", {"cost_efficiency": 2}, "cost_efficiency"),
    reg("input-price-negative", {"pricing": {"input_per_1k_tokens": -0.001}},
        "pricing.input_per_1k_tokens"),
    reg("output-price-negative", {"pricing": {"output_per_1k_tokens": -1}},
        "pricing.output_per_1k_tokens"),
    reg("input-price-string", {"pricing": {"input_per_1k_tokens": "free"}},
        "pricing.input_per_1k_tokens"),
    reg("input-price-huge", {"pricing": {"input_per_1k_tokens": 1e300}},
        "pricing.input_per_1k_tokens"),
    reg("pricing-string", {"pricing": "cheap"}, "pricing"),
    reg("per-request-negative", {"pricing": {"per_request_usd": -0.01}},
        "pricing.per_request_usd"),
    reg("per-request-sub-nano", {"pricing": {"per_request_usd": 0.0000000001}},
        "pricing.per_request_usd"),
    reg("per-request-ten-decimals", {"pricing": {"per_request_usd": 0.0123456789}},
        "pricing.per_request_usd"),
    reg("per-request-string", {"pricing": {"per_request_usd": "1c"}},
        "pricing.per_request_usd"),
    reg("accuracy-1.5", {"performance": {"accuracy_score": 1.5}}, "performance.accuracy_score"),
    reg("accuracy-negative", {"performance": {"accuracy_score": -0.1}},
        "performance.accuracy_score"),
    reg("accuracy-string", {"performance": {"accuracy_score": "high"}},
        "performance.accuracy_score"),
    reg("latency-negative", {"performance": {"avg_latency_ms": -5}},
        "performance.avg_latency_ms"),
    reg("performance-list", {"performance": [300]}, "performance"),
    reg("endpoint-relative", {"endpoint": "/v1/generate"}, "endpoint"),
    reg("endpoint-ftp", {"endpoint": "ftp://models.example.com/generate"}, "endpoint"),
    reg("endpoint-file", {"endpoint": "file:///etc/passwd"}, "endpoint"),
    reg("endpoint-javascript", {"endpoint": "javascript:alert(1)"}, "endpoint"),
    reg("endpoint-no-host", {"endpoint": "http://"}, "endpoint"),
    reg("endpoint-bad-port", {"endpoint": "http://models.example.com:99999/"}, "endpoint"),
    reg("endpoint-words", {"endpoint": "not a url"}, "endpoint"),
    reg("endpoint-number", {"endpoint": 8080}, "endpoint"),
    reg("endpoint-missing", {"endpoint": MISSING}, "endpoint"),
    reg("name-missing", {"name": MISSING}, "name"),
    reg("name-empty", {"name": ""}, "name"),
    reg("name-number", {"name": 5}, "name"),
    reg("name-spaces", {"name": "my model!"}, "name"),
    reg("name-too-long", {"name": "m" * 201}, "name"),
    reg("capabilities-string", {"capabilities": "chat"}, "capabilities"),
    reg("capabilities-numbers", {"capabilities": [1]}, "capabilities"),
    reg("capabilities-empty-entry", {"capabilities": [""]}, "capabilities"),
    reg("specialties-string", {"specialties": "coding"}, "specialties"),
    reg("credentials-string", {"auth_type": "bearer", "credentials": "sk-1"}, "credentials"),
    reg("credentials-number-value", {"auth_type": "bearer", "credentials": {"api_key": 5}},
        "credentials.api_key"),
    reg("bearer-without-credentials", {"auth_type": "bearer"}, "credentials"),
    reg("api_key-with-empty-credentials", {"auth_type": "api_key", "credentials": {}},
        "credentials"),
    reg("timeout_ms-zero", {"timeout_ms": 0}, "timeout_ms"),
    reg("timeout_ms-fraction", {"timeout_ms": 1.5}, "timeout_ms"),
    reg("timeout_ms-string", {"timeout_ms": "1s"}, "timeout_ms"),
    reg("max_response_bytes-small", {"max_response_bytes": 1023}, "max_response_bytes"),
    reg("max_response_bytes-huge", {"max_response_bytes": (256 << 20) + 1},
        "max_response_bytes"),
    reg("max_response_bytes-over-uint32", {"max_response_bytes": 2**40}, "max_response_bytes"),
    reg("max_event_bytes-huge", {"max_event_bytes": (16 << 20) + 1}, "max_event_bytes"),
    reg("max_event_bytes-string", {"max_event_bytes": "1MB"}, "max_event_bytes"),
    reg("max_concurrency-zero", {"max_concurrency": 0}, "max_concurrency"),
    reg("max_concurrency-huge", {"max_concurrency": 10_001}, "max_concurrency"),
    reg("enabled-string", {"enabled": "yes"}, "enabled"),
    reg("description-number", {"description": 5}, "description"),
]

KEY_CASES = [
    key("role-missing", {"name": "x"}, "role"),
    key("role-unknown", {"role": "root"}, "role"),
    key("role-number", {"role": 1}, "role"),
    key("name-number", {"role": "consumer", "name": 5}, "name"),
    key("name-too-long", {"role": "consumer", "name": "n" * 201}, "name"),
    key("rate_limit-string", {"role": "consumer", "rate_limit": "fast"}, "rate_limit"),
    key("rpm-negative", {"role": "consumer", "rate_limit": {"requests_per_minute": -1}},
        "rate_limit.requests_per_minute"),
    key("tpm-fraction", {"role": "consumer", "rate_limit": {"tokens_per_minute": 1.5}},
        "rate_limit.tokens_per_minute"),
    key("budget-negative", {"role": "consumer", "budget_usd": -1}, "budget_usd"),
    key("budget-string", {"role": "consumer", "budget_usd": "ten"}, "budget_usd"),
    key("budget-huge", {"role": "consumer", "budget_usd": 1e300}, "budget_usd"),
]

QUERY_CASES = [
    Bad("page_size-negative", 400, "page_size", method="GET", path="/v1/models?page_size=-1"),
    Bad("page_size-word", 400, "page_size", method="GET", path="/v1/models?page_size=ten"),
    Bad("page_size-superscript", 400, "page_size", method="GET",
        path="/v1/models?page_size=%C2%B9"),
    Bad("page_size-over-the-maximum", 400, "page_size", method="GET",
        path="/v1/models?page_size=1001"),
    Bad("type-unknown", 400, "type", method="GET", path="/v1/models?type=video"),
    Bad("page_token-not-base64url-length", 400, "page_token", method="GET",
        path="/v1/models?page_token=abcde"),
    Bad("page_token-not-base64", 400, "page_token", method="GET",
        path="/v1/models?page_token=!!!"),
    Bad("get-unknown-model", 404, method="GET", path="/v1/models/nope", says="nope"),
    Bad("delete-unknown-model", 404, method="DELETE", path="/v1/models/nope", key="provider"),
    Bad("patch-unknown-model", 404, method="PATCH", path="/v1/models/nope", key="provider",
        body={"description": "x"}, base=False),
    Bad("revoke-unknown-key", 404, method="DELETE", path="/v1/keys/key_nope", key="admin"),
    Bad("patch-unknown-key", 404, method="PATCH", path="/v1/keys/key_nope", key="admin",
        body={"name": "x"}, base=False),
]

ALL_CASES = [*GENERATE_CASES, *BODY_CASES, *PATH_CASES, *AUTH_CASES, *REGISTER_CASES,
             *KEY_CASES, *QUERY_CASES]


async def prepared(harness: Harness, provider_url: str) -> None:
    """A model the valid base body can call, so a bad case cannot fail for another reason."""
    provider = await harness.key("provider")
    await harness.register(provider, name="m-ok", type="text", endpoint=provider_url + "/ok")


async def send(harness: Harness, case: Bad) -> tuple[int, Mapping[str, str], Any]:
    headers = dict(case.headers)
    if case.key == "admin":
        headers.update(bearer(ADMIN_KEY))
    elif case.key not in (None, "none"):
        headers.update(bearer(await harness.key(case.key)))
    data = case.raw
    if data is None and case.body is not None:
        body = case.body
        if case.base and isinstance(body, dict):
            body = merged(MODEL_BASE if case.path == "/v1/models" else GENERATE_BASE, body)
        data = orjson.dumps(body)
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    payload = io.BytesIO(data) if data is not None and len(data) > MIB else data
    async with harness.http.request(case.method, harness.http_url + case.path, data=payload,
                                    headers=headers) as resp:
        answer = resp.status, resp.headers.copy(), orjson.loads(await resp.read())
    if case.path == "/v1/models" and answer[0] == 201:
        # A registration that wrongly succeeded must not turn later cases into 409s.
        await harness.http.delete(f"{harness.http_url}/v1/models/{answer[2]['name']}",
                                  headers=bearer(ADMIN_KEY))
    return answer


def check_envelope(case: Bad, status: int, headers: Mapping[str, str], body: Any) -> None:
    assert status == case.status, body
    assert headers["Content-Type"].startswith("application/json")
    error = body["error"]
    assert error["code"] == case.status
    assert error["type"] == TYPES[case.status]
    assert error["request_id"] == headers["x-request-id"]
    assert isinstance(error["message"], str) and error["message"]
    if case.field:
        assert case.field in error["message"], error
        assert error.get("field", case.field) == case.field
    if case.says:
        assert case.says in error["message"], error
    if case.status == 405:
        assert headers.get("Allow"), "a 405 says which methods are allowed"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory,
                 provider_url: str) -> AsyncIterator[Harness]:
    """One gateway for every case below: each case is one request, so they stay fast."""
    url = f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'gateway.db'}"
    async for running in run_harness(gateway_settings(url)):
        await prepared(running, provider_url)
        yield running


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.id)
async def test_bad_input_gets_its_4xx_envelope(shared: Harness, case: Bad):
    check_envelope(case, *await send(shared, case))


async def test_every_bad_input_in_a_row_then_the_server_still_answers(harness: Harness,
                                                                      provider_url: str):
    await prepared(harness, provider_url)
    wrong = []
    for case in ALL_CASES:
        status, headers, body = await send(harness, case)
        try:
            check_envelope(case, status, headers, body)
        except AssertionError:
            wrong.append((case.id, status, body))
    assert not wrong
    consumer = await harness.key("consumer")
    status, headers, body = await harness.generate(consumer, model="m-ok", input="still here")
    assert status == 200, body
    assert body["output"] == "ok: still here"
    async with harness.http.get(f"{harness.http_url}/healthz") as resp:
        assert resp.status == 200


async def test_duplicate_name_is_409(harness: Harness):
    provider = await harness.key("provider")
    other = await harness.key("provider", "other-provider")
    await harness.register(provider, **MODEL_BASE)
    for key in (provider, other, ADMIN_KEY):
        async with harness.http.post(f"{harness.http_url}/v1/models", json=MODEL_BASE,
                                     headers=bearer(key)) as resp:
            body = await resp.json()
            assert resp.status == 409, body
            assert body["error"] == {**body["error"], "code": 409, "type": "conflict"}
            assert "m-new" in body["error"]["message"]
    # Renaming another model onto a taken name is the same conflict.
    await harness.register(provider, **{**MODEL_BASE, "name": "m-second"})
    async with harness.http.patch(f"{harness.http_url}/v1/models/m-second",
                                  json={"name": "m-new"}, headers=bearer(provider)) as resp:
        assert resp.status == 409
        assert (await resp.json())["error"]["type"] == "conflict"


@pytest.mark.parametrize(("change", "field"), [
    ({"type": "video"}, "type"),
    ({"auth_type": "basic"}, "auth_type"),
    ({"auth_type": "bearer"}, "credentials"),  # switching to bearer needs a credential
    ({"cost_efficiency": "free"}, "cost_efficiency"),
    ({"pricing": {"output_per_1k_tokens": -2}}, "pricing.output_per_1k_tokens"),
    ({"performance": {"accuracy_score": 1.5}}, "performance.accuracy_score"),
    ({"endpoint": "ftp://models.example.com/x"}, "endpoint"),
    ({"endpoint": 7}, "endpoint"),
    ({"name": "bad name"}, "name"),
    ({"capabilities": "chat"}, "capabilities"),
])
async def test_bad_patch_is_400_and_changes_nothing(harness: Harness, change: dict[str, Any],
                                                    field: str):
    provider = await harness.key("provider")
    before = await harness.register(provider, **MODEL_BASE, capabilities=["chat"])
    async with harness.http.patch(f"{harness.http_url}/v1/models/m-new", json=change,
                                  headers=bearer(provider)) as resp:
        body = await resp.json()
        assert resp.status == 400, body
        assert body["error"]["type"] == "invalid_request"
        assert field in body["error"]["message"]
    async with harness.http.get(f"{harness.http_url}/v1/models/m-new",
                                headers=bearer(provider)) as resp:
        assert await resp.json() == before


async def test_revoked_key_is_refused_at_once(harness: Harness, provider_url: str):
    await prepared(harness, provider_url)
    async with harness.http.post(f"{harness.http_url}/v1/keys", headers=bearer(ADMIN_KEY),
                                 json={"role": "consumer", "name": "short-lived"}) as resp:
        created = await resp.json()
    secret = created["key"]
    status, _, _ = await harness.generate(secret, model="m-ok", input="hi")
    assert status == 200
    async with harness.http.delete(f"{harness.http_url}/v1/keys/{created['id']}",
                                   headers=bearer(ADMIN_KEY)) as resp:
        assert resp.status == 204
    for headers in (bearer(secret), {"x-api-key": secret}):
        async with harness.http.post(f"{harness.http_url}/v1/generate", headers=headers,
                                     json=GENERATE_BASE) as resp:
            body = await resp.json()
            assert resp.status == 401
            assert body["error"]["type"] == "authentication_error"
            assert secret not in body["error"]["message"]
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.Generate(generate_pb2.GenerateRequest(model="m-ok", input="hi"),
                            metadata=(("x-api-key", secret),), timeout=5)
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Revoking it again finds nothing to revoke.
    async with harness.http.delete(f"{harness.http_url}/v1/keys/{created['id']}",
                                   headers=bearer(ADMIN_KEY)) as resp:
        assert resp.status == 404


# -- gRPC ------------------------------------------------------------------------------------


def error_info(error: aio.AioRpcError) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo]:
    """The google.rpc.Status of the grpc-status-details-bin trailer, and its ErrorInfo."""
    trailer = dict(error.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailer["grpc-status-details-bin"])
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    return status, info


def generate_request(**fields: Any) -> generate_pb2.GenerateRequest:
    parameters = fields.pop("parameters", {})
    routing = fields.pop("routing", {})
    request = generate_pb2.GenerateRequest(**{"model": "m-ok", "input": "hi", **fields})
    request.parameters.update(parameters)
    for name, value in routing.items():
        setattr(request.routing, name, value)
    return request


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"input": ""}, "input"),
    ({"parameters": {"max_tokens": 0}}, "parameters.max_tokens"),
    ({"parameters": {"max_tokens": 2.5}}, "parameters.max_tokens"),
    ({"parameters": {"max_tokens": math.inf}}, "parameters.max_tokens"),
    ({"parameters": {"temperature": math.nan}}, "parameters.temperature"),
    ({"parameters": {"voice": 3}}, "parameters.voice"),
    ({"model": "", "routing": {"strategy": "fastest"}}, "routing.strategy"),
    ({"model": "", "routing": {"type": "video"}}, "routing.type"),
    ({"model": "", "routing": {"max_latency_ms": -1.0}}, "routing.max_latency_ms"),
    ({"model": "", "routing": {"max_price_per_1k_tokens": math.nan}},
     "routing.max_price_per_1k_tokens"),
])
async def test_grpc_generate_invalid_argument_names_the_field(
        harness: Harness, provider_url: str, request_fields: dict[str, Any], field: str):
    await prepared(harness, provider_url)
    consumer = await harness.key("consumer")
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.Generate(generate_request(**request_fields),
                            metadata=(("authorization", f"Bearer {consumer}"),), timeout=5)
    error = failure.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status, info = error_info(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == error.details()
    assert field in status.message
    assert info.reason == "INVALID_ARGUMENT"
    assert info.domain == "ai1net.dev"
    assert info.metadata["field"] == field


@pytest.mark.parametrize(("spec", "field"), [
    ({"type": "video"}, "type"),
    ({"auth_type": "basic"}, "auth_type"),
    ({"endpoint": "ftp://models.example.com/x"}, "endpoint"),
    ({"endpoint": ""}, "endpoint"),
    ({"name": ""}, "name"),
    ({"cost_efficiency": "extreme"}, "cost_efficiency"),
    ({"pricing": registry_pb2.Pricing(input_per_1k_tokens=-1)}, "pricing.input_per_1k_tokens"),
    ({"pricing": registry_pb2.Pricing(output_per_1k_tokens=math.inf)},
     "pricing.output_per_1k_tokens"),
    ({"performance": registry_pb2.Performance(accuracy_score=1.5)},
     "performance.accuracy_score"),
    ({"performance": registry_pb2.Performance(accuracy_score=math.nan)},
     "performance.accuracy_score"),
    ({"performance": registry_pb2.Performance(avg_latency_ms=math.inf)},
     "performance.avg_latency_ms"),
    ({"auth_type": "bearer"}, "credentials"),
])
async def test_grpc_register_invalid_argument_names_the_field(harness: Harness,
                                                              spec: dict[str, Any], field: str):
    provider = await harness.key("provider")
    stub = registry_pb2_grpc.RegistryServiceStub(harness.channel)
    message = registry_pb2.ModelSpec(**{**MODEL_BASE, **spec})
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.RegisterModel(registry_pb2.RegisterModelRequest(model=message),
                                 metadata=(("x-api-key", provider),), timeout=5)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, info = error_info(failure.value)
    assert info.metadata["field"] == field


async def test_grpc_missing_key_is_unauthenticated_with_details(harness: Harness):
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    for metadata in ((), (("authorization", "Bearer ai1_unknown"),)):
        with pytest.raises(aio.AioRpcError) as failure:
            await stub.Generate(generate_request(), metadata=metadata, timeout=5)
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
        _, info = error_info(failure.value)
        assert info.reason == "UNAUTHENTICATED"
