"""Models registered with "api": "openai" are OpenAI-compatible servers (vLLM, Ollama, ...):
called at {endpoint}/chat/completions, their answers, streams, usage and errors mapped to the
contract (CONTRACT §3). The server is tests/support/provider.py's /openai/{mode}/v1."""

from __future__ import annotations

import orjson
from openai import AsyncOpenAI

from tests.conftest import Harness, bearer

SECRET = "sk-openai-upstream-1"


async def register(harness: Harness, provider_url: str, name: str, mode: str = "ok") -> str:
    provider = await harness.key("provider")
    await harness.register(provider, name=name, type="text", api="openai",
                           endpoint=f"{provider_url}/openai/{mode}/v1/",
                           upstream_model="llama-3.1-8b", auth_type="bearer",
                           credentials={"api_key": SECRET})
    return await harness.key("consumer")


async def requests_to(harness: Harness, provider_url: str, mode: str) -> list[dict]:
    path = f"/openai/{mode}/v1/chat/completions"
    async with harness.http.get(f"{provider_url}/_events", params={"path": path}) as resp:
        return [e for e in (await resp.json())["events"] if e["kind"] == "request"]


async def test_a_unary_call_is_a_chat_completion(harness: Harness, provider_url: str):
    consumer = await register(harness, provider_url, "oa-unary")
    status, _, body = await harness.generate(consumer, model="oa-unary", input="hi",
                                               parameters={"max_tokens": 20,
                                                           "temperature": 0.5})
    assert status == 200, body
    assert body["output"] == "echo: hi"
    assert body["usage"] == {"input_tokens": 4, "output_tokens": 6}
    sent = (await requests_to(harness, provider_url, "ok"))[-1]
    assert sent["body"]["model"] == "llama-3.1-8b"
    assert sent["body"]["messages"] == [{"role": "user", "content": "hi"}]
    assert (sent["body"]["max_tokens"], sent["body"]["temperature"]) == (20, 0.5)
    assert "stream" not in sent["body"]
    assert sent["headers"]["authorization"] == f"Bearer {SECRET}"
    assert sent["headers"]["idempotency-key"] == body["id"]


async def test_a_streamed_call_relays_the_deltas_and_the_usage(harness: Harness,
                                                               provider_url: str):
    consumer = await register(harness, provider_url, "oa-stream")
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "oa-stream", "input": "hello there",
                                       "stream": True}) as resp:
        assert resp.status == 200
        events = [orjson.loads(line) for line in (await resp.read()).splitlines()]
    assert "".join(e["delta"] for e in events if "delta" in e) == "echo: hello there"
    assert len([e for e in events if "delta" in e]) == 2
    assert events[-1]["done"] is True
    assert events[-1]["usage"] == {"input_tokens": 4, "output_tokens": 6}
    sent = (await requests_to(harness, provider_url, "ok"))[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_the_callers_messages_go_through(harness: Harness, provider_url: str):
    consumer = await register(harness, provider_url, "oa-messages")
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "why?"}]
    status, _, body = await harness.generate(consumer, model="oa-messages", input="why?",
                                             parameters={"messages": messages})
    assert status == 200, body
    assert body["output"] == "echo: why?"
    assert (await requests_to(harness, provider_url, "ok"))[-1]["body"]["messages"] == messages


async def test_errors_keep_their_meaning(harness: Harness, provider_url: str):
    consumer = await register(harness, provider_url, "oa-bad", "bad")
    status, _, body = await harness.generate(consumer, model="oa-bad", input="hi")
    assert status == 400, body
    assert "temperature is out of range" in body["error"]["message"]
    await register(harness, provider_url, "oa-busy", "busy")
    status, headers, body = await harness.generate(consumer, model="oa-busy", input="hi")
    assert status == 429, body
    assert headers["Retry-After"] == "7"


async def test_a_stream_cut_before_done_ends_with_an_error(harness: Harness, provider_url: str):
    consumer = await register(harness, provider_url, "oa-cut", "cut")
    async with harness.http.post(f"{harness.http_url}/v1/generate", headers=bearer(consumer),
                                 json={"model": "oa-cut", "input": "hi", "stream": True}) as resp:
        events = [orjson.loads(line) for line in (await resp.read()).splitlines()]
    assert resp.status == 200
    assert events[0] == {"delta": "echo:"}
    assert events[-1]["error"]["type"] == "upstream_error"


async def test_api_is_validated(harness: Harness, provider_url: str):
    provider = await harness.key("provider")
    async with harness.http.post(f"{harness.http_url}/v1/models", headers=bearer(provider),
                                 json={"name": "oa-x", "type": "text", "api": "grpc",
                                       "endpoint": f"{provider_url}/openai/ok/v1"}) as resp:
        body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["field"] == "api"


async def test_an_upstreams_finish_reason_goes_through(harness: Harness, provider_url: str):
    """An OpenAI-compatible upstream's finish_reason reaches the native answer and the
    OpenAI surface (unary and streamed), where the SDK reads it."""
    consumer = await register(harness, provider_url, "oa-filtered", mode="filtered")
    status, _, body = await harness.generate(consumer, model="oa-filtered", input="hi")
    assert (status, body["finish_reason"]) == (200, "content_filter")
    async with AsyncOpenAI(api_key=consumer, base_url=f"{harness.http_url}/openai/v1",
                           max_retries=0) as oai:
        answer = await oai.chat.completions.create(
            model="oa-filtered", messages=[{"role": "user", "content": "hi"}])
        stream = await oai.chat.completions.create(
            model="oa-filtered", messages=[{"role": "user", "content": "hi"}], stream=True)
        last = [chunk async for chunk in stream if chunk.choices][-1]
    assert answer.choices[0].finish_reason == "content_filter"
    assert last.choices[0].finish_reason == "content_filter"
