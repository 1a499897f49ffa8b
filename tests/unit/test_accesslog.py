"""Access log: one JSON line per call, with the trace id, at the configured level."""

from __future__ import annotations

import io
import logging

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from ai1net.server.accesslog import JsonFormatter, _AccessLine, configure_logging, log_call

ACCESS_FIELDS = {"ts", "level", "logger", "msg", "trace_id", "span_id", "request_id", "method",
                 "model", "outcome", "latency_ms", "overhead_ms", "input_tokens",
                 "output_tokens", "cost_usd"}


@pytest.fixture
def root_logging(monkeypatch):
    """configure_logging replaces the root handlers: give it a list of its own."""
    root = logging.getLogger()
    level = root.level
    monkeypatch.setattr(root, "handlers", [])
    yield
    root.setLevel(level)


@pytest.fixture
def lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def call(logger: logging.Logger | None = None, **overrides):
    fields = {"request_id": "req-1", "method": "Generate", "model": "m1", "outcome": "ok",
              "latency_ms": 12.34567, "input_tokens": 10, "output_tokens": 20,
              "cost_usd": 0.00042, "overhead_ms": 0.5, **overrides}
    if logger is not None:
        fields["logger"] = logger
    log_call(**fields)


def test_a_call_inside_a_span_is_one_json_line_with_its_trace_id(lines):
    logger, read = lines
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("ai1net.generate") as span:
        call(logger)
    [line] = read()
    context = span.get_span_context()
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)
    assert set(line) == ACCESS_FIELDS
    assert line["level"] == "INFO"
    assert line["logger"] == "test.access"
    assert line["msg"] == "Generate m1 ok 12.3ms"
    assert (line["request_id"], line["model"], line["outcome"]) == ("req-1", "m1", "ok")
    assert (line["input_tokens"], line["output_tokens"]) == (10, 20)
    assert line["latency_ms"] == 12.346
    assert line["cost_usd"] == 0.00042


def test_without_a_span_the_trace_id_is_null(lines):
    logger, read = lines
    call(logger, outcome="Unavailable", model="")
    [line] = read()
    assert line["trace_id"] is None
    assert "span_id" not in line
    assert line["msg"] == "Generate - Unavailable 12.3ms"


def test_configured_level_decides_whether_access_lines_appear(root_logging):
    stream = io.StringIO()
    listener = configure_logging("warning", stream=stream)
    call()
    listener.stop()  # records are written by a thread: let it finish
    assert stream.getvalue() == ""

    listener = configure_logging("INFO", stream=stream)
    call()
    listener.stop()
    [line] = [orjson.loads(text) for text in stream.getvalue().splitlines()]
    assert line["logger"] == "ai1net.access"


def test_lines_written_by_the_thread_keep_the_trace_of_the_call(root_logging):
    stream = io.StringIO()
    writer = configure_logging("INFO", stream=stream)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("ai1net.generate") as span:
        call()
        logging.getLogger("ai1net.test").warning("provider %s is slow", "p1")
    for index in range(200):
        logging.getLogger("ai1net.test").info("line %d", index)
    writer.stop()
    writer.stop()  # again: nothing left to do
    lines = [orjson.loads(text) for text in stream.getvalue().splitlines()]
    context = span.get_span_context()
    assert set(lines[0]) == ACCESS_FIELDS  # queued without a record, written as one
    assert (lines[0]["logger"], lines[0]["level"]) == ("ai1net.access", "INFO")
    assert lines[0]["msg"] == "Generate m1 ok 12.3ms"
    for line in lines[:2]:
        assert line["trace_id"] == trace.format_trace_id(context.trace_id)
        assert line["span_id"] == trace.format_span_id(context.span_id)
    assert lines[1]["msg"] == "provider p1 is slow"
    assert [line["msg"] for line in lines[2:]] == [f"line {index}" for index in range(200)]
    assert "trace_id" not in lines[2]


def test_handlers_and_filters_on_the_way_up_still_see_access_lines(root_logging):
    stream, seen = io.StringIO(), io.StringIO()
    listener = configure_logging("INFO", stream=stream)
    parent = logging.getLogger("ai1net")
    other = logging.StreamHandler(seen)
    parent.addHandler(other)
    access = logging.getLogger("ai1net.access")
    dropped = 0

    def drop(_record: logging.LogRecord) -> bool:
        nonlocal dropped
        dropped += 1
        return False

    try:
        call()  # the parent's handler gets it, and so does the writer
        access.addFilter(drop)
        call()  # filtered out: nobody gets it
    finally:
        parent.removeHandler(other)
        access.removeFilter(drop)
        listener.stop()
    assert seen.getvalue() == "Generate m1 ok 12.3ms\n"
    assert dropped == 1
    assert len(stream.getvalue().splitlines()) == 1


def test_text_format_when_json_is_off(root_logging):
    stream = io.StringIO()
    listener = configure_logging("INFO", json=False, stream=stream)
    logging.getLogger("ai1net.test").info("hello %s", "there")
    call()
    listener.stop()
    first, second = stream.getvalue().splitlines()
    assert first.endswith("INFO ai1net.test hello there")
    assert second.endswith("INFO ai1net.access Generate m1 ok 12.3ms")


def test_access_lines_reach_other_handlers_when_there_are_some(root_logging):
    stream, seen = io.StringIO(), io.StringIO()
    listener = configure_logging("INFO", stream=stream)
    other = logging.StreamHandler(seen)  # a second root handler: records are made for it
    logging.getLogger().addHandler(other)
    call()
    logging.getLogger().removeHandler(other)
    listener.stop()
    assert seen.getvalue() == "Generate m1 ok 12.3ms\n"
    assert orjson.loads(stream.getvalue())["request_id"] == "req-1"


def test_an_unknown_level_is_refused(root_logging):
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")


def test_exceptions_and_extra_fields_are_kept(lines):
    logger, read = lines
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed", extra={"fields": {"model": "m1"}})
    [line] = read()
    assert line["level"] == "ERROR"
    assert line["model"] == "m1"
    assert "RuntimeError: boom" in line["exc"]


def test_timestamps_read_as_datetime_writes_them():
    import random
    from datetime import UTC, datetime

    from ai1net.server.accesslog import timestamp

    draw = random.Random(7)
    for _ in range(20_000):
        moment = round(draw.uniform(0, 4e9), draw.randint(0, 9))
        assert timestamp(moment) == datetime.fromtimestamp(moment, UTC).isoformat(
            timespec="milliseconds"), moment
    assert timestamp(1.9999999) == "1970-01-01T00:00:02.000+00:00"  # rounds into the next second


@pytest.mark.parametrize("sampled", [True, False, None])
@pytest.mark.parametrize("overhead_ms", [0.25, None])
def test_the_writers_access_line_is_the_formatters_byte_for_byte(sampled, overhead_ms):
    """The writer makes access lines itself (`_AccessLine.json_line`): what
    `JsonFormatter` would write of the same record, with or without a span."""
    context = trace.INVALID_SPAN_CONTEXT if sampled is None else trace.SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C, 0x00F067AA0BA902B7, is_remote=False,
        trace_flags=trace.TraceFlags(int(sampled)))
    line = _AccessLine(1_765_000_000.0456, context, "req-1", "Generate", "m\"1\u00e9",
                       "ok", 12.3456, overhead_ms, 5, 7, 0.00042)
    assert line.json_line() == JsonFormatter().format(line.record()).encode() + b"\n"
