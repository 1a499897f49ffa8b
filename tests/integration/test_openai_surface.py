"""The official ``openai`` SDK against a real gateway's /openai/v1 (CONTRACT §6).

Sync and async clients, unary and streamed, each error the SDK types, images and speech
from the demo provider, routing with "auto", cancellation and accounting. The sync client
blocks, so it runs in a thread while the gateway serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import openai
import orjson
import pytest
from jsonschema import Draft202012Validator
from openai import AsyncOpenAI, OpenAI
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ai1net.bridge.openapi import openapi_document
from tests.conftest import Harness, bearer
from tests.integration.test_streaming import events, next_event

PRICING = {"input_per_1k_tokens": 1.0, "output_per_1k_tokens": 2.0}
AUDIO_BYTES = b"RIFF" + bytes(range(256)) * 16  # tests/support/provider.py's /audio-file


async def model(harness: Harness, provider_url: str, name: str, path: str,
                **spec: Any) -> None:
    provider = await harness.key("provider", "oai-provider")
    await harness.register(provider, name=name, endpoint=provider_url + path,
                           **{"type": "text", "pricing": PRICING, **spec})


def base_url(harness: Harness) -> str:
    return f"{harness.http_url}/openai/v1"


def client(harness: Harness, key: str) -> AsyncOpenAI:
    # No retries: the SDK would otherwise sleep through Retry-After and try again.
    return AsyncOpenAI(api_key=key, base_url=base_url(harness), max_retries=0)


async def with_sync_client(harness: Harness, key: str, use: Any) -> Any:
    def run() -> Any:
        with OpenAI(api_key=key, base_url=base_url(harness), max_retries=0) as sync:
            return use(sync)
    return await asyncio.to_thread(run)


async def raw_sse(harness: Harness, key: str, body: dict[str, Any]) -> list[bytes]:
    """The ``data:`` payloads of a streamed answer, as sent."""
    async with harness.http.post(f"{base_url(harness)}/chat/completions", json=body,
                                 headers=bearer(key)) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.read()
    return [line[6:] for line in text.split(b"\n") if line.startswith(b"data: ")]


async def test_chat_unary_with_sync_and_async_clients(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    consumer = await harness.key("consumer")
    sync_answer = await with_sync_client(harness, consumer, lambda c: c.chat.completions.create(
        model="m-ok", messages=[{"role": "user", "content": "hi"}]))
    async with client(harness, consumer) as async_client:
        async_answer = await async_client.chat.completions.create(
            model="m-ok", messages=[{"role": "user", "content": "hi"}])
    for answer in (sync_answer, async_answer):
        assert answer.object == "chat.completion"
        assert answer.id.startswith("chatcmpl-gen_")
        assert answer.model == "m-ok"
        assert answer.choices[0].message.role == "assistant"
        assert answer.choices[0].message.content == "ok: hi"
        assert answer.choices[0].finish_reason == "stop"
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens,
                answer.usage.total_tokens) == (3, 5, 8)
        assert answer.model_extra["ai1net"]["cost_usd"] == pytest.approx((3 + 5 * 2) / 1000)
    assert sync_answer.id != async_answer.id


async def test_provider_gets_the_conversation_as_text_and_the_messages(harness: Harness,
                                                                       provider_url: str):
    await model(harness, provider_url, "m-echo", "/echo")
    consumer = await harness.key("consumer")
    before = len(await events(harness, provider_url, "/echo", "request"))
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                             {"type": "text", "text": "there"}]}]
    async with client(harness, consumer) as oai:
        await oai.chat.completions.create(model="m-echo", messages=messages, temperature=0.5,
                                          max_completion_tokens=7, stop="END", seed=3)
        await oai.chat.completions.create(model="m-echo",
                                          messages=[{"role": "user", "content": "alone"}])
    received = await events(harness, provider_url, "/echo", "request")
    many, lone = (event["body"] for event in received[before:before + 2])
    assert many["input"] == "system: Be brief.\nuser: Hi there"
    assert many["parameters"] == {"messages": messages, "temperature": 0.5, "max_tokens": 7,
                                  "stop": ["END"], "seed": 3}
    assert lone["input"] == "alone"


async def test_stream_with_usage_then_done(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-stream", "/stream/ndjson?n=3")
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        stream = await oai.chat.completions.create(
            model="m-stream", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:4]] == ["w0 ", "w1 ", "w2 "]
    assert chunks[4].choices[0].finish_reason == "stop"
    assert chunks[5].choices == []
    assert (chunks[5].usage.prompt_tokens, chunks[5].usage.completion_tokens) == (2, 3)
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("chatcmpl-gen_")
    assert {c.model for c in chunks} == {"m-stream"}
    payloads = await raw_sse(harness, consumer, {
        "model": "m-stream", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert payloads[-1] == b"[DONE]"
    assert "usage" not in orjson.loads(payloads[-2])  # not asked for this time


async def test_stream_with_the_sync_client(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-stream", "/stream/sse?n=2")
    consumer = await harness.key("consumer")

    def read(sync: OpenAI) -> list[str | None]:
        stream = sync.chat.completions.create(
            model="m-stream", messages=[{"role": "user", "content": "hi"}], stream=True)
        return [chunk.choices[0].delta.content for chunk in stream]
    assert await with_sync_client(harness, consumer, read) == ["", "w0 ", "w1 ", None]


async def test_failure_mid_stream_is_an_error_event_never_done(harness: Harness,
                                                               provider_url: str):
    await model(harness, provider_url, "m-cut", "/stream/cut?n=3&gap_ms=50")
    consumer = await harness.key("consumer")
    body = {"model": "m-cut", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    payloads = await raw_sse(harness, consumer, body)
    assert b"[DONE]" not in payloads
    assert orjson.loads(payloads[-1])["error"]["type"] == "upstream_error"
    async with client(harness, consumer) as oai:
        stream = await oai.chat.completions.create(**body)
        with pytest.raises(openai.APIError) as failed:
            async for _ in stream:
                pass
    assert failed.value.body["type"] == "upstream_error"


async def test_legacy_completions(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        answer = await oai.completions.create(model="m-ok", prompt="hello", max_tokens=5)
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "ok: hello"
    assert answer.choices[0].finish_reason == "length"  # 5 tokens of the 5 allowed
    assert answer.usage.total_tokens == 8


async def test_models_list_and_get(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok", capabilities=["chat"])
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        listed = [m async for m in oai.models.list()]
        one = await oai.models.retrieve("m-ok")
        with pytest.raises(openai.NotFoundError) as missing:
            await oai.models.retrieve("nope")
    assert [m.id for m in listed] == ["m-ok"]
    assert one.object == "model" and one.owned_by and one.created > 0
    assert one.model_extra["pricing"] == {**PRICING, "per_request_usd": 0.0}
    assert one.model_extra["capabilities"] == ["chat"]
    assert missing.value.status_code == 404


async def test_errors_are_the_sdks_typed_exceptions(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    consumer = await harness.key("consumer")
    hi = [{"role": "user", "content": "hi"}]
    async with client(harness, "ai1_not-a-key") as stranger:
        with pytest.raises(openai.AuthenticationError) as denied:
            await stranger.chat.completions.create(model="m-ok", messages=hi)
    assert denied.value.status_code == 401
    assert denied.value.type == "authentication_error"
    async with client(harness, consumer) as oai:
        with pytest.raises(openai.NotFoundError) as unknown:
            await oai.chat.completions.create(model="no-such-model", messages=hi)
        with pytest.raises(openai.BadRequestError) as two:
            await oai.chat.completions.create(model="m-ok", messages=hi, n=2)
        with pytest.raises(openai.BadRequestError) as hot:
            await oai.chat.completions.create(model="m-ok", messages=hi, temperature=3)
        with pytest.raises(openai.BadRequestError) as empty:
            await oai.chat.completions.create(model="m-ok", messages=[])
        with pytest.raises(openai.NotFoundError):
            await oai.embeddings.create(model="m-ok", input="hi")  # not offered
    assert unknown.value.status_code == 404 and unknown.value.type == "not_found"
    assert (two.value.param, two.value.code) == ("n", "invalid_request")
    assert hot.value.param == "temperature"  # checked by the server, named as in the body
    assert empty.value.param == "messages"
    assert unknown.value.request_id.startswith("req_")


async def test_rate_limit_is_429_with_retry_after(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    limited = await harness.key("consumer", "oai-limited", rate_limit={"requests_per_minute": 1})
    async with client(harness, limited) as oai:
        await oai.chat.completions.create(model="m-ok", messages=[{"role": "user",
                                                                   "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as limit:
            await oai.chat.completions.create(model="m-ok", messages=[{"role": "user",
                                                                       "content": "hi"}])
    assert limit.value.status_code == 429
    assert int(limit.value.response.headers["retry-after"]) >= 1
    assert limit.value.response.headers["x-ratelimit-limit-requests"] == "1"


async def test_spent_budget_is_402(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    broke = await harness.key("consumer", "oai-broke", budget_usd=0.0)
    async with client(harness, broke) as oai:
        with pytest.raises(openai.APIStatusError) as spent:
            await oai.chat.completions.create(model="m-ok", messages=[{"role": "user",
                                                                       "content": "hi"}])
    assert spent.value.status_code == 402
    assert spent.value.type == "budget_exceeded"


async def test_auto_routes_with_the_ai1net_hints(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok", capabilities=["chat"])
    await model(harness, provider_url, "m-coder", "/echo", capabilities=["chat", "coding"])
    consumer = await harness.key("consumer")
    hi = [{"role": "user", "content": "hi"}]
    async with client(harness, consumer) as oai:
        raw = await oai.chat.completions.with_raw_response.create(
            model="auto", messages=hi,
            extra_body={"ai1net": {"routing": {"capabilities": ["coding"]}}})
        answer = raw.parse()
        with pytest.raises(openai.BadRequestError) as bad:
            await oai.chat.completions.create(
                model="auto", messages=hi,
                extra_body={"ai1net": {"routing": {"strategy": "fastest"}}})
    assert answer.model == "m-coder"
    assert raw.headers["x-ai1net-model"] == "m-coder"
    assert bad.value.param == "ai1net.routing.strategy"
    async with harness.http.post(f"{base_url(harness)}/chat/completions", headers=bearer(
            consumer), json={"messages": hi, "ai1net": {"fallbacks": []}}) as resp:
        assert resp.status == 200  # no model at all: routed too
        assert (await resp.json())["model"] in ("m-ok", "m-coder")


async def test_demo_images_and_speech(harness: Harness, demo_provider_url: str):
    provider = await harness.key("provider", "oai-demo")
    for kind, path in (("text", "/v1/generate"), ("image", "/image/v1/generate"),
                       ("audio", "/audio/v1/generate")):
        await harness.register(provider, name=f"demo-{kind}", type=kind,
                               endpoint=demo_provider_url + path)
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        by_url = await oai.images.generate(model="demo-image", prompt="a cat", size="64x64")
        as_b64 = await oai.images.generate(prompt="a cat", response_format="b64_json")
        speech = await oai.audio.speech.create(model="demo-audio", voice="alloy", input="hi")
        with pytest.raises(openai.BadRequestError) as wrong:
            await oai.images.generate(model="demo-text", prompt="a cat")
        with pytest.raises(openai.BadRequestError) as many:
            await oai.images.generate(model="demo-image", prompt="a cat", n=2)
    assert by_url.data[0].url.startswith("data:image/svg+xml;base64,")
    assert b"<svg" in base64.b64decode(as_b64.data[0].b64_json)
    assert speech.content.startswith(b"RIFF")
    assert speech.response.headers["Content-Type"] == "audio/wav"
    assert wrong.value.param == "model"
    assert many.value.param == "n"


async def test_speech_from_a_link_is_fetched(harness: Harness, provider_url: str):
    """The provider answers with a link (on loopback: the tests allow private endpoints);
    the SDK gets the bytes it points at, with their media type."""
    await model(harness, provider_url, "m-audio-link", "/audio/linked", type="audio",
                credentials={"api_key": "sk-audio"})
    await model(harness, provider_url, "m-audio-gone", "/audio/linked?to="
                f"{provider_url}/status/404", type="audio", credentials={"api_key": "sk-audio"})
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        speech = await oai.audio.speech.create(model="m-audio-link", voice="alloy", input="hi")
        with pytest.raises(openai.APIStatusError) as gone:
            await oai.audio.speech.create(model="m-audio-gone", voice="alloy", input="hi")
    assert speech.content == AUDIO_BYTES
    assert speech.response.headers["Content-Type"] == "audio/wav"
    assert speech.response.headers["x-ai1net-model"] == "m-audio-link"
    assert gone.value.status_code == 502
    assert "its link answered HTTP 405" in gone.value.message  # /status/* takes POSTs only
    called = await events(harness, provider_url, "/audio/linked", "request")
    assert called[-1]["headers"]["authorization"] == "Bearer sk-audio"
    fetched = await events(harness, provider_url, "/audio-file", "request")
    assert "authorization" not in fetched[-1]["headers"]  # a link gets no credential


async def test_closing_a_stream_cancels_the_provider_call(harness: Harness,
                                                          provider_url: str):
    path = "/stream/ndjson"
    await model(harness, provider_url, "m-long", f"{path}?n=50&gap_ms=100")
    consumer = await harness.key("consumer")
    before = len(await events(harness, provider_url, path, "disconnect"))
    async with client(harness, consumer) as oai:
        stream = await oai.chat.completions.create(
            model="m-long", messages=[{"role": "user", "content": "hi"}], stream=True)
        async for chunk in stream:
            if chunk.choices[0].delta.content:
                break
        await stream.close()
        closed_at = time.monotonic()
    disconnect = await next_event(harness, provider_url, path, "disconnect", before)
    assert disconnect["t"] - closed_at < 0.1


async def test_calls_are_accounted_like_native_ones(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    await model(harness, provider_url, "m-stream", "/stream/ndjson?n=3")
    consumer = await harness.key("consumer", "oai-accounted")
    hi = [{"role": "user", "content": "hi"}]
    async with client(harness, consumer) as oai:
        await oai.chat.completions.create(model="m-ok", messages=hi)
        stream = await oai.chat.completions.create(model="m-stream", messages=hi, stream=True)
        _ = [chunk async for chunk in stream]
        await oai.completions.create(model="m-ok", prompt="hi")
        with pytest.raises(openai.NotFoundError):
            await oai.chat.completions.create(model="no-such-model", messages=hi)
    await harness.gateway.ledger.flush()
    async with harness.http.get(f"{harness.http_url}/v1/usage", params={"group_by": "model"},
                                headers=bearer(consumer)) as resp:
        usage = await resp.json()
    assert usage["usage"]["requests"] == 3
    assert usage["usage"]["input_tokens"] == 3 + 2 + 3
    assert usage["usage"]["output_tokens"] == 5 + 3 + 5
    assert {g["group"]: g["usage"]["requests"] for g in usage["groups"]} == {"m-ok": 2,
                                                                             "m-stream": 1}


def schema_check(name: str) -> Any:
    """A validator for ``components.schemas[name]`` of /openapi.json, refs resolved."""
    document = openapi_document()
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(
        document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:openapi#/components/schemas/{name}"},
                                registry=registry).validate


async def test_answers_match_the_openapi_document(harness: Harness, provider_url: str):
    await model(harness, provider_url, "m-ok", "/ok")
    await model(harness, provider_url, "m-stream", "/stream/ndjson?n=2")
    await model(harness, provider_url, "m-image", "/image", type="image")
    consumer = await harness.key("consumer")
    hi = [{"role": "user", "content": "hi"}]

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        async with harness.http.post(f"{base_url(harness)}{path}", json=body,
                                     headers=bearer(consumer)) as resp:
            return resp.status, await resp.json()

    async def get(path: str) -> Any:
        async with harness.http.get(f"{base_url(harness)}{path}",
                                    headers=bearer(consumer)) as resp:
            return await resp.json()
    schema_check("ChatCompletion")((await post("/chat/completions", {
        "model": "m-ok", "messages": hi}))[1])
    schema_check("Completion")((await post("/completions", {"model": "m-ok",
                                                            "prompt": "hi"}))[1])
    schema_check("ImagesResponse")((await post("/images/generations", {
        "model": "m-image", "prompt": "a cat"}))[1])
    schema_check("OpenAIModelList")(await get("/models"))
    schema_check("OpenAIModel")(await get("/models/m-ok"))
    for expected, body in ((400, {"model": "m-ok", "messages": "x"}),
                           (404, {"model": "nope", "messages": hi})):
        status, answer = await post("/chat/completions", body)
        assert status == expected
        schema_check("OpenAIError")(answer)
    chunks = await raw_sse(harness, consumer, {"model": "m-stream", "messages": hi,
                                               "stream": True,
                                               "stream_options": {"include_usage": True}})
    for payload in chunks[:-1]:
        schema_check("ChatCompletionChunk")(orjson.loads(payload))


@pytest.mark.parametrize(("path", "finish", "native"), [
    # The provider said why: passed on, to the native answer too.
    ("/ok?finish=content_filter", "content_filter", "content_filter"),
    # It did not, and the answer did not use every token allowed.
    ("/ok", "stop", None),
    # A word OpenAI does not use is dropped.
    ("/ok?finish=not-a-reason", "stop", None),
])
async def test_the_providers_finish_reason_reaches_the_sdk(harness: Harness, provider_url: str,
                                                           path: str, finish: str,
                                                           native: str | None):
    await model(harness, provider_url, "m-finish", path)
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        answer = await oai.chat.completions.create(
            model="m-finish", messages=[{"role": "user", "content": "hi"}], max_tokens=50)
    assert answer.choices[0].finish_reason == finish
    status, _, body = await harness.generate(consumer, model="m-finish", input="hi")
    assert status == 200, body
    assert body.get("finish_reason") == native


@pytest.mark.parametrize("path", ["/stream/ndjson?n=3&finish=length",
                                  "/stream/sse?n=3&finish=length"])
async def test_a_streamed_finish_reason_is_on_the_last_chunk(harness: Harness,
                                                             provider_url: str, path: str):
    await model(harness, provider_url, "m-finish-stream", path)
    consumer = await harness.key("consumer")
    async with client(harness, consumer) as oai:
        stream = await oai.chat.completions.create(
            model="m-finish-stream", messages=[{"role": "user", "content": "hi"}],
            max_tokens=50, stream=True)
        chunks = [chunk async for chunk in stream]
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == \
        [None, None, None, None, "length"]
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "m-finish-stream", "input": "hi",
                                       "stream": True}) as resp:
        done = orjson.loads((await resp.read()).splitlines()[-1])
    assert done["done"] is True and done["finish_reason"] == "length"
