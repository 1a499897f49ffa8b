"""server/providers.py pure functions: reading answers, counting tokens, mapping errors."""

from __future__ import annotations

import email.utils
import time

import orjson
import pytest

from ai1net.server import providers
from ai1net.server.errors import (
    ProviderRejected,
    UpstreamError,
    UpstreamRateLimited,
)
from ai1net.server.providers import (
    Done,
    count_tokens,
    estimate_tokens,
    parse_answer,
    provider_error,
    retry_after,
)

JSON = {"Content-Type": "application/json"}


def body(document: object) -> bytes:
    return orjson.dumps(document)


# -- parse_answer --------------------------------------------------------------------------


def test_parse_text_answer():
    answer = parse_answer(200, JSON, body({"output": "hello there", "usage": {
        "input_tokens": 3, "output_tokens": 2}, "latency_ms": 12}), "hi")
    assert answer.output == "hello there"
    assert (answer.tokens.input_tokens, answer.tokens.output_tokens) == (3, 2)
    assert answer.tokens.estimated is False


@pytest.mark.parametrize("output", [{"image_url": "https://img.example/1.png"},
                                    {"audio_url": "https://audio.example/1.wav"}])
def test_parse_object_answer(output: dict[str, str]):
    answer = parse_answer(200, JSON, body({"output": output, "usage": {
        "input_tokens": 1, "output_tokens": 1}}), "draw")
    assert answer.output == output


@pytest.mark.parametrize(("said", "kept"), [
    ("length", "length"), ("content_filter", "content_filter"), ("stop", "stop"),
    ("max_tokens", ""), (3, ""), (None, ""),
])
def test_a_native_providers_finish_reason_is_kept_when_it_is_openais_word(said: object,
                                                                         kept: str):
    answer = parse_answer(200, JSON, body({"output": "x", "finish_reason": said}), "hi")
    assert answer.finish_reason == kept
    assert providers._stream_event(body({"done": True, "finish_reason": said})) == \
        Done(None, kept)


def test_parse_answer_trusts_the_body_not_the_content_type():
    answer = parse_answer(200, {"Content-Type": "text/plain"}, body({"output": "x"}), "hi")
    assert answer.output == "x"


@pytest.mark.parametrize(("raw", "says"), [
    (b"not json", "invalid JSON"),
    (b"", "invalid JSON"),
    (b"[1, 2]", "not an object"),
    (b'"just a string"', "not an object"),
    (b'{"usage": {}}', "no output"),
    (b'{"output": 5}', "neither a string nor an object"),
    (b'{"output": ["a"]}', "neither a string nor an object"),
    (b'{"output": null}', "neither a string nor an object"),
])
def test_parse_answer_refuses_malformed_answers(raw: bytes, says: str):
    with pytest.raises(UpstreamError, match=says):
        parse_answer(200, JSON, raw, "hi")


def test_parse_answer_maps_error_statuses():
    with pytest.raises(ProviderRejected, match="too long"):
        parse_answer(400, JSON, body({"error": {"message": "too long", "code": 400}}), "hi")
    with pytest.raises(UpstreamError):
        parse_answer(503, JSON, b"", "hi")


# -- count_tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(("usage", "expected"), [
    ({"input_tokens": 2.2, "output_tokens": 3.01}, (3, 4)),
    ({"input_tokens": 2.0, "output_tokens": 3}, (2, 3)),
    ({"input_tokens": 0.0001, "output_tokens": 0}, (1, 0)),
    ({"input_tokens": 7.999999, "output_tokens": 1e-9}, (8, 1)),
    ({"prompt_tokens": 4, "completion_tokens": 5.5}, (4, 6)),  # OpenAI-style names
])
def test_count_tokens_rounds_reported_fractions_up(usage: dict[str, float],
                                                    expected: tuple[int, int]):
    tokens = count_tokens(usage, "input", "output")
    assert (tokens.input_tokens, tokens.output_tokens) == expected
    assert isinstance(tokens.input_tokens, int) and isinstance(tokens.output_tokens, int)
    assert tokens.estimated is False


@pytest.mark.parametrize("usage", [None, {}, "lots", [3, 5], {"input_tokens": "3"},
                                   {"input_tokens": -1, "output_tokens": -2},
                                   {"input_tokens": True, "output_tokens": False},
                                   {"input_tokens": float("nan"),
                                    "output_tokens": float("inf")}])
def test_count_tokens_estimates_what_is_missing_or_nonsense(usage: object):
    tokens = count_tokens(usage, "four", "twelve chars")
    assert (tokens.input_tokens, tokens.output_tokens) == (1, 3)
    assert tokens.estimated is True


def test_count_tokens_estimates_only_the_missing_side_but_marks_the_count():
    tokens = count_tokens({"input_tokens": 10}, "x", "abcdefghi")
    assert (tokens.input_tokens, tokens.output_tokens) == (10, 3)
    assert tokens.estimated is True


@pytest.mark.parametrize(("value", "tokens"), [
    ("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100), ("x" * 401, 101),
    ({"image_url": "https://img.example/1.png"}, 0), (None, 0),
])
def test_estimate_tokens_is_about_four_characters_a_token(value: object, tokens: int):
    assert estimate_tokens(value) == tokens


# -- provider_error ------------------------------------------------------------------------


def envelope(status: int, message: str) -> bytes:
    return body({"error": {"message": message, "code": status}})


@pytest.mark.parametrize("status", [400, 422])
def test_400_and_422_are_the_caller_s_fault_with_the_message(status: int):
    error = provider_error(status, {}, envelope(status, "temperature unsupported"))
    assert isinstance(error, ProviderRejected)
    assert error.code.name == "INVALID_ARGUMENT"
    assert "temperature unsupported" in error.message
    assert not error.retryable


def test_429_keeps_the_provider_s_retry_after():
    error = provider_error(429, {"Retry-After": "7"}, envelope(429, "slow down"))
    assert isinstance(error, UpstreamRateLimited)
    assert error.code.name == "RESOURCE_EXHAUSTED"
    assert error.retry_after_s == 7
    assert error.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credential_is_an_upstream_error_without_the_provider_s_words(status: int):
    error = provider_error(status, {}, envelope(status, "key sk-live-123 is wrong"))
    assert type(error) is UpstreamError
    assert error.reason == "UPSTREAM_ERROR"
    assert str(status) in error.message
    assert "sk-live-123" not in error.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_an_upstream_error_and_retryable(status: int):
    error = provider_error(status, {}, envelope(status, "boom"))
    assert type(error) is UpstreamError
    assert error.retryable
    assert "boom" in error.message and str(status) in error.message


@pytest.mark.parametrize(("raw", "says"), [
    (b"", "HTTP 500"),
    (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
    (body({"error": "plain string"}), "plain string"),
    (body({"detail": "other shape"}), "HTTP 500"),
    (b"x" * 5000, "x" * 500),
])
def test_error_message_from_any_body(raw: bytes, says: str):
    error = provider_error(500, {}, raw)
    assert says in error.message
    assert len(error.message) < 600


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0), (" 12 ", 12.0), ("0", 1.0), (None, 1.0), ("", 1.0), ("soon", 1.0),
    ("-3", 1.0), ("1.5", 1.0), ("\u00b9", 1.0), ("\u0663", 1.0), ("9" * 400, 3600.0),
    ("Mon, 99 Foo 2026 00:00:00 GMT", 1.0), (",", 1.0),
])
def test_retry_after_seconds(value: str | None, seconds: float):
    assert retry_after(value) == seconds


def test_retry_after_http_date():
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after(later) <= 31
    earlier = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert retry_after(earlier) == 1.0


def test_429_without_retry_after_still_says_when():
    error = provider_error(429, {}, b"")
    assert error.retry_after_s == 1.0
