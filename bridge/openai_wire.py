"""OpenAI's bodies ↔ AI1NET's generate messages (CONTRACT §6).

Requests become a ``GenerateRequest``: ``input`` is the conversation as text (a lone user
message: its text, if any; otherwise one ``role: text`` line per message), ``parameters`` the
sampling fields plus the original ``messages``. As in ``translate.py``, type errors are 400s
naming the body's field and the server checks meaning (``max_tokens``, ``temperature``,
routing) under the same names. Answers and stream chunks are OpenAI's objects, with
AI1NET's cost and timing as an extra ``ai1net`` field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from google.protobuf import struct_pb2

from ai1net.bridge.errors import HttpError, invalid, openai_envelope
from ai1net.bridge.streaming import SSE
from ai1net.bridge.translate import (
    JSON,
    _boolean,
    _fill_routing,
    _integer,
    _number,
    _object,
    _string,
    _strings,
    _take,
    parameters_json,
    pricing_json,
)
from ai1net.client.convert import value_to_python
from ai1net.v1 import generate_pb2, registry_pb2

AUTO = "auto"
ROLES = ("system", "developer", "user", "assistant")
MAX_STOPS = 4
SPEED_RANGE = (0.25, 4.0)
IMAGE_FORMATS = ("url", "b64_json")


@dataclass(slots=True)
class Asked:
    """One OpenAI request as the generate call it becomes, and how to answer it."""

    message: generate_pb2.GenerateRequest
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None


# -- requests ------------------------------------------------------------------------------


def chat_request(body: JSON) -> Asked:
    turns = _turns(body.get("messages"))
    if len(turns) == 1 and turns[0][0] == "user" and turns[0][1]:
        text = turns[0][1]
    else:
        text = "\n".join(f"{role}: {content}" for role, content in turns)
    parameters = _sampling(body)
    parameters["messages"] = body["messages"]
    return _asked(body, text, parameters, text_field="messages")


def completion_request(body: JSON) -> Asked:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise invalid("prompt", "is required: a string (or a list of one string)")
    return _asked(body, prompt, _sampling(body), text_field="prompt")


def image_request(body: JSON) -> tuple[Asked, bool]:
    """The call and whether the caller wants ``b64_json`` rather than a URL."""
    prompt = _required_string(body, "prompt")
    _only_one(body)
    if _take(body, "stream", _boolean):
        raise invalid("stream", "is not supported for images: the answer comes whole")
    parameters = {name: value for name in ("size", "quality", "style", "user")
                  if (value := _take(body, name, _string)) is not None}
    answer = _take(body, "response_format", _string)
    if answer is None:
        answer = "url"
    elif answer not in IMAGE_FORMATS:
        raise invalid("response_format", f"must be one of {', '.join(IMAGE_FORMATS)}")
    return _asked(body, prompt, parameters, text_field="prompt", kind="image"), \
        answer == "b64_json"


def speech_request(body: JSON) -> Asked:
    text = _required_string(body, "input")
    if _take(body, "stream_format", _string) not in (None, "audio"):
        raise invalid("stream_format", 'only "audio" is supported: the answer comes whole')
    parameters: JSON = {}
    voice = _take(body, "voice", _string)
    if voice is not None:
        parameters["voice"] = voice
    audio_format = _take(body, "response_format", _string)
    if audio_format is not None:
        parameters["format"] = audio_format
    speed = _take(body, "speed", _number)
    if speed is not None:
        if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
            raise invalid("speed", f"must be a number in [{SPEED_RANGE[0]}, {SPEED_RANGE[1]}]")
        parameters["speed"] = speed
    instructions = _take(body, "instructions", _string)
    if instructions is not None:
        parameters["instructions"] = instructions
    return _asked(body, text, parameters, text_field="input", kind="audio")


def _turns(messages: Any) -> list[tuple[str, str]]:
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "is required: a non-empty list of messages")
    turns = []
    for index, message in enumerate(messages):
        # Field names are made only for an error: this runs on every call.
        if not isinstance(message, dict):
            raise invalid(f"messages[{index}]", "must be a JSON object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise invalid(f"messages[{index}].role", f"must be one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            content = _parts(content, index, optional=role == "assistant")
        turns.append((role, content))
    return turns


def _parts(content: Any, index: int, *, optional: bool) -> str:
    """The text of content parts (only ``text`` parts are understood)."""
    field = f"messages[{index}].content"
    if content is None and optional:
        return ""
    if not isinstance(content, list):
        raise invalid(field, "must be a string or a list of text parts")
    texts = []
    for number, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise invalid(f"{field}[{number}].type", 'only "text" parts are supported')
        texts.append(_string(part.get("text"), f"{field}[{number}].text"))
    return "".join(texts)


def _sampling(body: JSON) -> JSON:
    """The sampling fields present, checked for type, under the provider's names.

    One pass over the body's own fields: a usual body has two or three.
    """
    _only_one(body)
    parameters: JSON = {}
    for name, value in body.items():
        check = SAMPLING.get(name)
        if check is not None and value is not None:
            parameters[name] = check(value, name)
    if "max_completion_tokens" in parameters:  # OpenAI's newer name wins
        parameters["max_tokens"] = parameters.pop("max_completion_tokens")
    return parameters


def _positive(value: Any, field: str) -> int:
    return _integer(value, field, minimum=1)


def _top_p(value: Any, field: str) -> float:
    number = _number(value, field)
    if not 0 <= number <= 1:
        raise invalid(field, "must be a number in [0, 1]")
    return number


def _stop(value: Any, field: str) -> list[str]:
    stops = [value] if isinstance(value, str) else _strings(value, field)
    if len(stops) > MAX_STOPS:
        raise invalid(field, f"must be a string or a list of at most {MAX_STOPS}")
    return stops


def _seed(value: Any, field: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**53:
        raise invalid(field, "must be an integer of at most 53 bits")
    return value


# The sampling fields passed on as parameters; the server checks max_tokens and temperature
# for meaning, as for /v1/generate.
SAMPLING: dict[str, Callable[[Any, str], Any]] = {
    "max_tokens": _positive, "max_completion_tokens": _positive, "temperature": _number,
    "top_p": _top_p, "stop": _stop, "seed": _seed, "user": _string, "response_format": _object,
}


def _only_one(body: JSON) -> None:
    n = _take(body, "n", _integer)
    if n is not None and n != 1:
        raise invalid("n", "only 1 is supported")


def _required_string(body: JSON, name: str) -> str:
    value = _take(body, name, _string)
    if not value:
        raise invalid(name, "is required: a non-empty string")
    return str(value)


def _asked(body: JSON, text: str, parameters: JSON, *, text_field: str,
           kind: str = "") -> Asked:
    if not text:
        raise invalid(text_field, "must hold some text")
    message = generate_pb2.GenerateRequest(input=text)
    model = _take(body, "model", _string) or AUTO
    if model != AUTO:
        message.model = model
    if parameters:  # as JSON: a Struct would be built here and taken apart in the server
        message.parameters_json = parameters_json(parameters)
    hints = _take(body, "ai1net", _object)
    if hints or kind:
        _fill_hints(message, hints or {}, kind)
    stream = bool(_take(body, "stream", _boolean))
    options = _take(body, "stream_options", _object) or {}
    include_usage = _take(options, "include_usage", _boolean, "stream_options.")
    return Asked(message=message, stream=stream, include_usage=bool(include_usage),
                 max_tokens=parameters.get("max_tokens"))


def _fill_hints(message: generate_pb2.GenerateRequest, hints: JSON, kind: str) -> None:
    """The ``ai1net`` object: routing hints and fallbacks; an endpoint's type wins."""
    routing = _take(hints, "routing", _object, "ai1net.")
    if routing:
        _fill_routing(message.routing, routing)
    if kind:
        if message.routing.type not in ("", kind):
            raise invalid("ai1net.routing.type", f"must be {kind} (or absent) here")
        message.routing.type = kind
    message.fallbacks.extend(_take(hints, "fallbacks", _strings, "ai1net.") or ())


# -- answers -------------------------------------------------------------------------------


def finish_reason(said: str, output_tokens: int, max_tokens: int | None) -> str:
    """The provider's reason when it gave one; else ``length`` when the answer used every
    token allowed, else ``stop``."""
    if said:
        return said
    return "length" if max_tokens is not None and output_tokens >= max_tokens else "stop"


def usage_json(usage: generate_pb2.Usage) -> JSON:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens}


def _extras(answer: generate_pb2.GenerateResponse | generate_pb2.GenerateStreamResponse,
            usage: generate_pb2.Usage) -> JSON:
    extras: JSON = {"generation_id": answer.id, "cost_usd": answer.cost_usd,
                    "latency_ms": answer.latency_ms}
    if usage.estimated:
        extras["usage_estimated"] = True
    return extras


def _text(output: struct_pb2.Value) -> str:
    """A text model's output; for an image or audio model, its URL."""
    if output.WhichOneof("kind") == "string_value":
        return output.string_value
    value = value_to_python(output)
    url = value.get("image_url") or value.get("audio_url") if isinstance(value, dict) \
        else None
    return url if isinstance(url, str) else orjson.dumps(value).decode()


def chat_json(response: generate_pb2.GenerateResponse, asked: Asked, created: int) -> JSON:
    return _answer(response, asked, created, chat=True)


def completion_json(response: generate_pb2.GenerateResponse, asked: Asked,
                    created: int) -> JSON:
    return _answer(response, asked, created, chat=False)


def _answer(response: generate_pb2.GenerateResponse, asked: Asked, created: int, *,
            chat: bool) -> JSON:
    usage = response.usage  # each read of a sub-message makes a new wrapper: read it once
    text = _text(response.output)
    choice: JSON = {"index": 0, "message": {"role": "assistant", "content": text}} if chat \
        else {"index": 0, "text": text}
    choice["logprobs"] = None
    choice["finish_reason"] = finish_reason(response.finish_reason, usage.output_tokens,
                                            asked.max_tokens)
    return {"id": f"chatcmpl-{response.id}" if chat else f"cmpl-{response.id}",
            "object": "chat.completion" if chat else "text_completion", "created": created,
            "model": response.model, "choices": [choice], "usage": usage_json(usage),
            "ai1net": _extras(response, usage)}


def images_json(response: generate_pb2.GenerateResponse, *, b64: bool, created: int) -> JSON:
    url = _output_url(response, "image_url")
    if not b64:
        return {"created": created, "data": [{"url": url}]}
    media, data = data_url(url, "image_url")
    return {"created": created, "data": [{"b64_json": base64.b64encode(data).decode()}],
            "output_format": media.rpartition("/")[2]}


def audio_url(response: generate_pb2.GenerateResponse) -> str:
    """Where the audio is: a ``data:`` URL (`data_url`) or a link (``links.fetch_audio``)."""
    return _output_url(response, "audio_url")


def _output_url(response: generate_pb2.GenerateResponse, name: str) -> str:
    output = value_to_python(response.output)
    url = output.get(name) if isinstance(output, dict) else None
    if not isinstance(url, str):
        raise HttpError(502, f"model {response.model} answered without output.{name}")
    return url


def data_url(url: str, name: str) -> tuple[str, bytes]:
    """A ``data:`` URL's media type and bytes; a link is no data: URL (501)."""
    if not url.startswith("data:"):
        raise HttpError(501, f"the provider answered with a link in output.{name}, and this "
                        "endpoint returns only data: URLs as bytes; ask for a URL instead")
    header, comma, payload = url[5:].partition(",")
    media, *flags = header.split(";")
    if not comma:
        raise HttpError(502, f"output.{name} is a malformed data: URL")
    if "base64" not in flags:
        return media or "text/plain", unquote_to_bytes(payload)
    try:
        return media or "application/octet-stream", base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HttpError(502, f"output.{name} is a data: URL with bad base64") from exc


def model_json(model: registry_pb2.Model) -> JSON:
    """OpenAI's model object, with AI1NET's catalogue fields beside its own."""
    return {"id": model.name, "object": "model", "created": model.created_at.seconds,
            "owned_by": model.owner or "ai1net", "type": model.type,
            "pricing": pricing_json(model.pricing),
            "capabilities": list(model.capabilities), "specialties": list(model.specialties),
            "description": model.description}


# -- stream chunks -------------------------------------------------------------------------


class ChunkFraming:
    """A GenerateStream as OpenAI's SSE chunks (``streaming.Framing``).

    Chat: a first chunk with ``delta.role``, one per delta with ``delta.content``, a last
    one with ``finish_reason`` (and AI1NET's extras), the usage chunk when asked, then
    ``[DONE]``. Legacy completions: ``text`` instead of ``delta``. A failure after the first
    chunk is an ``error`` event and no ``[DONE]``.
    """

    content_type = SSE

    def __init__(self, asked: Asked, *, chat: bool, created: int) -> None:
        self._asked = asked
        self._chat = chat
        self._created = created
        self._head: JSON = {}

    def opening(self, metadata: dict[str, str]) -> bytes:
        prefix, kind = ("chatcmpl-", "chat.completion.chunk") if self._chat \
            else ("cmpl-", "text_completion")
        self._head = {"id": prefix + metadata.get("x-ai1net-generation-id", ""),
                      "object": kind, "created": self._created,
                      "model": metadata.get("x-ai1net-model", "")}
        return self._event([self._choice({"role": "assistant", "content": ""})]) \
            if self._chat else b""

    def message(self, message: generate_pb2.GenerateStreamResponse) -> bytes:
        if message.done:
            return self._last(message)
        text = message.delta if message.HasField("delta") else _text(message.output)
        return self._event([self._choice({"content": text} if self._chat else text)])

    def failure(self, error: HttpError, request_id: str) -> bytes:
        return b"data: " + orjson.dumps(openai_envelope(error, request_id)) + b"\n\n"

    def closing(self) -> bytes:
        return b"data: [DONE]\n\n"

    def _last(self, done: generate_pb2.GenerateStreamResponse) -> bytes:
        usage = done.usage
        finish = finish_reason(done.finish_reason, usage.output_tokens, self._asked.max_tokens)
        last = self._event([self._choice({} if self._chat else "", finish)],
                           ai1net={**_extras(done, usage), "ttft_ms": done.ttft_ms})
        if self._asked.include_usage:
            last += self._event([], usage=usage_json(usage))
        return last

    def _choice(self, delta: JSON | str, finish: str | None = None) -> JSON:
        if self._chat:
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"index": 0, "text": delta, "logprobs": None, "finish_reason": finish}

    def _event(self, choices: list[JSON], **extra: Any) -> bytes:
        return b"data: " + orjson.dumps({**self._head, "choices": choices, **extra}) + b"\n\n"
