"""Generate end to end: HTTP and gRPC callers, a real provider process, both auth styles."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from ai1net.client.convert import value_to_python
from ai1net.v1 import generate_pb2, generate_pb2_grpc
from tests.conftest import Harness, bearer


async def provider_with_model(harness: Harness, provider_url: str, name: str = "m-ok",
                              path: str = "/ok", **spec: object) -> str:
    key = await harness.key("provider", "prov-a")
    body = {"name": name, "type": "text", "endpoint": provider_url + path,
            "pricing": {"input_per_1k_tokens": 0.002, "output_per_1k_tokens": 0.004}, **spec}
    await harness.register(key, **body)
    return key


async def test_text_over_http_with_bearer_and_x_api_key(harness: Harness, provider_url: str):
    await provider_with_model(harness, provider_url)
    consumer = await harness.key("consumer")
    for headers in (bearer(consumer), {"x-api-key": consumer}):
        async with harness.http.post(f"{harness.http_url}/v1/generate", headers=headers,
                                     json={"model": "m-ok", "input": "hi"}) as resp:
            assert resp.status == 200
            body = await resp.json()
            assert resp.headers["x-ai1net-model"] == "m-ok"
            assert resp.headers["x-request-id"].startswith("req_")
        assert body["output"] == "ok: hi"
        assert body["usage"] == {"input_tokens": 3, "output_tokens": 5}
        assert body["id"].startswith("gen_")
        assert body["cost_usd"] == pytest.approx((3 * 0.002 + 5 * 0.004) / 1000)
        assert isinstance(body["latency_ms"], int)


async def test_text_over_grpc_with_both_auth_styles(harness: Harness, provider_url: str):
    await provider_with_model(harness, provider_url)
    consumer = await harness.key("consumer")
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    for metadata in ((("authorization", f"Bearer {consumer}"),), (("x-api-key", consumer),)):
        call = stub.Generate(generate_pb2.GenerateRequest(model="m-ok", input="hi"),
                             metadata=metadata, timeout=5)
        response = await call
        assert value_to_python(response.output) == "ok: hi"
        assert response.usage.input_tokens == 3
        trailing = dict(await call.trailing_metadata())
        assert trailing["x-ai1net-model"] == "m-ok"


@pytest.mark.parametrize(("kind", "path", "output"), [
    ("image", "/image", {"image_url": "https://img.example/1.png"}),
    ("audio", "/audio", {"audio_url": "https://audio.example/1.wav"}),
])
async def test_image_and_audio_outputs(harness: Harness, provider_url: str, kind: str,
                                       path: str, output: dict[str, str]):
    await provider_with_model(harness, provider_url, name=f"m-{kind}", path=path, type=kind)
    consumer = await harness.key("consumer")
    status, _, body = await harness.generate(consumer, model=f"m-{kind}", input="draw")
    assert status == 200
    assert body["output"] == output


async def test_demo_provider_all_three_types(harness: Harness, demo_provider_url: str):
    key = await harness.key("provider", "demo")
    for kind, path in (("text", "/v1/generate"), ("image", "/image/v1/generate"),
                       ("audio", "/audio/v1/generate")):
        await harness.register(key, name=f"demo-{kind}", type=kind,
                               endpoint=demo_provider_url + path)
    consumer = await harness.key("consumer")
    status, _, text = await harness.generate(consumer, model="demo-text", input="Why is the sky blue?",
                                             parameters={"max_tokens": 5})
    assert status == 200 and isinstance(text["output"], str)
    assert text["usage"]["output_tokens"] <= 5
    status, _, image = await harness.generate(consumer, model="demo-image", input="a cat")
    assert image["output"]["image_url"].startswith("data:image/svg+xml;base64,")
    status, _, audio = await harness.generate(consumer, model="demo-audio", input="hello")
    assert audio["output"]["audio_url"].startswith("data:audio/wav;base64,")


@pytest.mark.parametrize(("auth_type", "header"), [("bearer", "authorization"),
                                                   ("api_key", "x-api-key")])
async def test_outbound_auth_reaches_provider(harness: Harness, provider_url: str,
                                              auth_type: str, header: str):
    await provider_with_model(harness, provider_url, name="m-auth", path="/auth/s3cret",
                              auth_type=auth_type, credentials={"api_key": "s3cret"})
    consumer = await harness.key("consumer")
    status, _, body = await harness.generate(consumer, model="m-auth", input="hi")
    assert status == 200, body


async def test_provider_receives_contract_request(harness: Harness, provider_url: str):
    await provider_with_model(harness, provider_url, name="m-echo", path="/echo",
                              auth_type="bearer", credentials={"api_key": "sk-x"})
    consumer = await harness.key("consumer")
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    request = generate_pb2.GenerateRequest(model="m-echo", input="hello")
    request.parameters.update({"max_tokens": 20, "temperature": 0.5})
    await stub.Generate(request, metadata=(("x-api-key", consumer),))
    async with harness.http.get(f"{provider_url}/_events?path=/echo") as resp:
        event = (await resp.json())["events"][-1]
    assert event["body"] == {"input": "hello", "parameters": {"max_tokens": 20,
                                                              "temperature": 0.5}}
    assert event["headers"]["authorization"] == "Bearer sk-x"
    assert event["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize(("path", "status", "kind"), [
    ("/status/400", 400, "invalid_request"),
    ("/status/422", 400, "invalid_request"),
    ("/status/429", 429, "rate_limit_exceeded"),
    ("/status/401", 502, "upstream_error"),
    ("/status/500", 502, "upstream_error"),
    ("/status/503", 502, "upstream_error"),
    ("/badjson", 502, "upstream_error"),
])
async def test_provider_errors_map_to_contract(harness: Harness, provider_url: str, path: str,
                                               status: int, kind: str):
    await provider_with_model(harness, provider_url, name="m-err", path=path)
    consumer = await harness.key("consumer")
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "m-err", "input": "hi"}) as resp:
        body = await resp.json()
        assert resp.status == status, body
        assert body["error"]["type"] == kind
        assert body["error"]["code"] == status
        if status == 429:
            assert resp.headers["Retry-After"] == "7"
        if path in ("/status/400", "/status/422"):
            assert "scripted failure" in body["error"]["message"]


async def test_unreachable_provider_is_502(harness: Harness):
    key = await harness.key("provider")
    await harness.register(key, name="m-down", type="text",
                           endpoint="http://127.0.0.1:9/v1/generate")
    consumer = await harness.key("consumer")
    status, _, body = await harness.generate(consumer, model="m-down", input="hi")
    assert status == 502
    assert body["error"]["type"] == "upstream_error"


async def test_fractional_and_missing_usage(harness: Harness, provider_url: str):
    await provider_with_model(harness, provider_url, name="m-frac", path="/fractional")
    await provider_with_model(harness, provider_url, name="m-none", path="/nousage")
    consumer = await harness.key("consumer")
    _, _, frac = await harness.generate(consumer, model="m-frac", input="hi")
    assert frac["usage"] == {"input_tokens": 3, "output_tokens": 4}
    _, _, none = await harness.generate(consumer, model="m-none", input="four")
    assert none["usage"] == {"input_tokens": 1, "output_tokens": 3, "estimated": True}


async def test_grpc_deadline_is_honoured(harness: Harness, provider_url: str):
    await provider_with_model(harness, provider_url, name="m-slow", path="/slow/3000")
    consumer = await harness.key("consumer")
    stub = generate_pb2_grpc.GenerateServiceStub(harness.channel)
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.Generate(generate_pb2.GenerateRequest(model="m-slow", input="hi"),
                            metadata=(("x-api-key", consumer),), timeout=0.3)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_http_timeout_header_gives_504(harness: Harness, provider_url: str):
    await provider_with_model(harness, provider_url, name="m-slow", path="/slow/3000")
    consumer = await harness.key("consumer")
    async with harness.http.post(f"{harness.http_url}/v1/generate",
                                 headers={**bearer(consumer), "x-request-timeout-ms": "300"},
                                 json={"model": "m-slow", "input": "hi"}) as resp:
        assert resp.status == 504
        assert (await resp.json())["error"]["type"] == "timeout"
