"""OpenAI's chat-completions wire format, spoken to models registered with ``"api":
"openai"`` (vLLM, Ollama, llama.cpp, TGI, LiteLLM, OpenAI itself): the body the gateway
sends, and what it reads back, unary and streamed (CONTRACT §3 and §6).

Plain values in and out; providers.py turns them into the gateway's answers and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ai1net.server.errors import UpstreamError
from ai1net.server.rules import FINISH_REASONS

# Parameters passed through to the server as they are, when the caller set them.
PASSED = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed",
          "user", "response_format", "presence_penalty", "frequency_penalty", "n")


def request_document(upstream_model: str, input: str, parameters: Mapping[str, Any], *,
                     stream: bool) -> dict[str, Any]:
    """The chat-completions body: the caller's messages when it sent them (the OpenAI
    surface does), else the input as one user message."""
    messages = parameters.get("messages")
    if not (isinstance(messages, list) and messages):
        messages = [{"role": "user", "content": input}]
    document: dict[str, Any] = {"model": upstream_model, "messages": messages}
    for name in PASSED:
        if name in parameters:
            document[name] = parameters[name]
    if stream:
        document["stream"] = True
        document["stream_options"] = {"include_usage": True}
    return document


def answer_parts(document: Mapping[str, Any]) -> tuple[str, object, str]:
    """The text, the usage and the finish reason of a chat completion."""
    choice = _first_choice(document)
    if choice is None:
        raise UpstreamError("the provider's chat completion has no choices")
    message = choice.get("message")
    content = message.get("content") if isinstance(message, Mapping) else None
    if content is not None and not isinstance(content, str):
        raise UpstreamError("the provider's chat completion content is not text")
    return content or "", document.get("usage"), _finish(choice)


class StreamReader:
    """Chunks of a streamed chat completion, read one by one: their text, and the usage and
    finish reason once they come (the usage in a last chunk without choices)."""

    __slots__ = ("finish_reason", "usage")

    def __init__(self) -> None:
        self.usage: object = None
        self.finish_reason = ""

    def read(self, chunk: Mapping[str, Any]) -> str:
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, Mapping) else error
            raise UpstreamError(f"the provider failed mid-stream: {str(message)[:500]}")
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        choice = _first_choice(chunk)
        if choice is None:
            return ""
        self.finish_reason = _finish(choice) or self.finish_reason
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, Mapping) else None
        return content if isinstance(content, str) else ""


def _first_choice(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = document.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return None


def _finish(choice: Mapping[str, Any]) -> str:
    return finish_reason(choice.get("finish_reason"))


def finish_reason(value: object) -> str:
    """A provider's finish reason when it is one of `FINISH_REASONS`, else ""."""
    return value if isinstance(value, str) and value in FINISH_REASONS else ""
