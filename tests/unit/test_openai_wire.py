"""OpenAI bodies ↔ generate messages, without sockets (bridge/openai_wire.py)."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from ai1net.bridge import openai_wire as wire
from ai1net.bridge.errors import HttpError, openai_envelope
from ai1net.server.services.generate import parameters
from ai1net.v1 import generate_pb2

HI = [{"role": "user", "content": "hi"}]


def test_a_lone_user_message_is_its_text_and_named_models_are_kept():
    asked = wire.chat_request({"model": "m", "messages": HI})
    assert asked.message.input == "hi"
    assert asked.message.model == "m"
    assert parameters(asked.message) == {"messages": HI}
    assert not asked.stream and asked.max_tokens is None


def test_a_conversation_is_one_line_per_message():
    messages = [{"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "a"},
                                             {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "user", "content": ""}]
    asked = wire.chat_request({"messages": messages})
    assert asked.message.input == "developer: Be brief.\nuser: ab\nassistant: \nuser: "
    assert wire.chat_request({"messages": [{"role": "user", "content": ""}]}).message.input \
        == "user: "


@pytest.mark.parametrize("model", [None, "auto", ""])
def test_auto_or_no_model_is_routed_with_the_hints(model: str | None):
    body: dict[str, Any] = {"messages": HI, "ai1net": {
        "routing": {"strategy": "cost", "capabilities": ["coding"]}, "fallbacks": ["b"]}}
    if model is not None:
        body["model"] = model
    message = wire.chat_request(body).message
    assert message.model == ""
    assert message.routing.strategy == "cost"
    assert list(message.routing.capabilities) == ["coding"]
    assert list(message.fallbacks) == ["b"]


def test_sampling_fields_become_parameters():
    asked = wire.chat_request({
        "messages": HI, "max_tokens": 9, "max_completion_tokens": 5, "temperature": 0.2,
        "top_p": 1, "stop": "x", "seed": 7.0, "user": "u", "response_format": {"type": "text"},
        "n": 1, "stream": True, "stream_options": {"include_usage": True}, "tools": []})
    assert parameters(asked.message) == {
        "messages": HI, "max_tokens": 5, "temperature": 0.2, "top_p": 1, "stop": ["x"],
        "seed": 7, "user": "u", "response_format": {"type": "text"}}
    assert (asked.stream, asked.include_usage, asked.max_tokens) == (True, True, 5)


@pytest.mark.parametrize(("body", "param"), [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     "messages[0].content[0].text"),
    ({"messages": HI, "n": 2}, "n"),
    ({"messages": HI, "n": "1"}, "n"),
    ({"messages": HI, "max_tokens": 0}, "max_tokens"),
    ({"messages": HI, "max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"messages": HI, "temperature": "hot"}, "temperature"),
    ({"messages": HI, "top_p": 1.5}, "top_p"),
    ({"messages": HI, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": HI, "stop": [1]}, "stop"),
    ({"messages": HI, "seed": 2**60}, "seed"),
    ({"messages": HI, "seed": True}, "seed"),
    ({"messages": HI, "user": 5}, "user"),
    ({"messages": HI, "response_format": "json"}, "response_format"),
    ({"messages": HI, "model": 3}, "model"),
    ({"messages": HI, "stream": "yes"}, "stream"),
    ({"messages": HI, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
    ({"messages": HI, "ai1net": []}, "ai1net"),
    ({"messages": HI, "ai1net": {"fallbacks": "b"}}, "ai1net.fallbacks"),
])
def test_bad_chat_bodies_name_the_field(body: dict[str, Any], param: str):
    with pytest.raises(HttpError) as bad:
        wire.chat_request(body)
    assert (bad.value.status, bad.value.field) == (400, param)


@pytest.mark.parametrize(("body", "param"), [
    ({}, "prompt"), ({"prompt": ""}, "prompt"), ({"prompt": ["a", "b"]}, "prompt"),
])
def test_bad_completion_bodies(body: dict[str, Any], param: str):
    with pytest.raises(HttpError) as bad:
        wire.completion_request(body)
    assert bad.value.field == param


def test_completion_prompt_may_be_a_list_of_one():
    assert wire.completion_request({"prompt": ["say"]}).message.input == "say"


def test_images_and_speech_ask_for_their_type_when_routed():
    asked, b64 = wire.image_request({"prompt": "a cat", "size": "64x64",
                                     "response_format": "b64_json"})
    assert (asked.message.routing.type, b64) == ("image", True)
    assert parameters(asked.message) == {"size": "64x64"}
    speech = wire.speech_request({"model": "tts", "input": "hi", "voice": "alloy",
                                  "response_format": "wav", "speed": 1.5})
    assert speech.message.routing.type == "audio" and speech.message.model == "tts"
    assert parameters(speech.message) == {"voice": "alloy", "format": "wav",
                                                          "speed": 1.5}


@pytest.mark.parametrize(("request_of", "body", "param"), [
    (wire.image_request, {}, "prompt"),
    (wire.image_request, {"prompt": "x", "n": 2}, "n"),
    (wire.image_request, {"prompt": "x", "response_format": "png"}, "response_format"),
    (wire.image_request, {"prompt": "x", "stream": True}, "stream"),
    (wire.image_request, {"prompt": "x", "ai1net": {"routing": {"type": "text"}}},
     "ai1net.routing.type"),
    (wire.speech_request, {"input": ""}, "input"),
    (wire.speech_request, {"input": "x", "speed": 9}, "speed"),
    (wire.speech_request, {"input": "x", "stream_format": "sse"}, "stream_format"),
])
def test_bad_image_and_speech_bodies(request_of: Any, body: dict[str, Any], param: str):
    with pytest.raises(HttpError) as bad:
        request_of(body)
    assert bad.value.field == param


def test_data_urls_decode_and_links_are_not_fetched():
    wav = base64.b64encode(b"RIFF....").decode()
    assert wire.data_url(f"data:audio/wav;base64,{wav}", "audio_url") == ("audio/wav",
                                                                          b"RIFF....")
    assert wire.data_url("data:,a%20b", "audio_url") == ("text/plain", b"a b")
    with pytest.raises(HttpError) as linked:
        wire.data_url("https://audio.example/1.wav", "audio_url")
    assert linked.value.status == 501
    for broken in ("data:audio/wav;base64", "data:audio/wav;base64,@@@"):
        with pytest.raises(HttpError) as bad:
            wire.data_url(broken, "audio_url")
        assert bad.value.status == 502


def test_server_fields_are_named_as_the_body_names_them():
    def param(field: str | None) -> Any:
        return openai_envelope(HttpError(400, "x", field=field), "req_1")["error"]["param"]
    assert param("parameters.max_tokens") == "max_tokens"
    assert param("routing.strategy") == "ai1net.routing.strategy"
    assert param("fallbacks") == "ai1net.fallbacks"
    assert param("model") == "model"
    assert param(None) is None
    assert openai_envelope(HttpError(429, "slow"), "r")["error"] == {
        "message": "slow", "type": "rate_limit_exceeded", "param": None,
        "code": "rate_limit_exceeded"}


def events(raw: bytes) -> list[Any]:
    return [line[6:] if line[6:] == b"[DONE]" else orjson.loads(line[6:])
            for line in raw.split(b"\n\n") if line]


def stream(asked: wire.Asked, *, chat: bool = True) -> list[Any]:
    framing = wire.ChunkFraming(asked, chat=chat, created=7)
    done = generate_pb2.GenerateStreamResponse(
        done=True, id="gen_1", model="m", usage=generate_pb2.Usage(input_tokens=2,
                                                                   output_tokens=4))
    raw = framing.opening({"x-ai1net-generation-id": "gen_1", "x-ai1net-model": "m"})
    for text in ("a", "b"):
        raw += framing.message(generate_pb2.GenerateStreamResponse(delta=text))
    return events(raw + framing.message(done) + framing.closing())


def test_chat_chunks_role_then_content_then_finish_usage_and_done():
    chunks = stream(wire.chat_request({"messages": HI, "max_tokens": 4, "stream": True,
                                       "stream_options": {"include_usage": True}}))
    assert [c["choices"][0]["delta"] for c in chunks[:3]] == [
        {"role": "assistant", "content": ""}, {"content": "a"}, {"content": "b"}]
    assert chunks[3]["choices"][0]["finish_reason"] == "length"  # 4 of 4 tokens
    assert chunks[3]["ai1net"]["generation_id"] == "gen_1"
    assert chunks[4]["choices"] == []
    assert chunks[4]["usage"] == {"prompt_tokens": 2, "completion_tokens": 4,
                                  "total_tokens": 6}
    assert chunks[5] == b"[DONE]"
    assert {(c["id"], c["object"], c["created"], c["model"]) for c in chunks[:5]} == {
        ("chatcmpl-gen_1", "chat.completion.chunk", 7, "m")}


def test_completion_chunks_carry_text_and_no_usage_unless_asked():
    chunks = stream(wire.completion_request({"prompt": "p", "stream": True}), chat=False)
    assert [c["choices"][0]["text"] for c in chunks[:3]] == ["a", "b", ""]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[0]["id"] == "cmpl-gen_1" and chunks[0]["object"] == "text_completion"
    assert chunks[3] == b"[DONE]" and len(chunks) == 4


def test_a_failure_event_is_openais_error():
    framing = wire.ChunkFraming(wire.chat_request({"messages": HI}), chat=True, created=1)
    failure = events(framing.failure(HttpError(502, "provider cut"), "req_1"))
    assert failure == [{"error": {"message": "provider cut", "type": "upstream_error",
                                  "param": None, "code": "upstream_error"}}]


def test_parameters_read_back_as_a_struct_would():
    value = {"messages": HI, "empty": [], "nothing": {}, "null": None,
             "mixed": [1, 2.5, True, "x", {"deep": [None, {}]}, []], "seed": -3}
    sent = generate_pb2.GenerateRequest(parameters_json=orjson.dumps(value))
    struct = generate_pb2.GenerateRequest()
    struct.parameters.update(value)
    assert parameters(sent) == parameters(struct) == value
