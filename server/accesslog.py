"""JSON logs: a formatter for every record, and one access line per call.

A JSON line holds ``ts``, ``level``, ``logger``, ``msg``, the current ``trace_id`` and
``span_id`` when a span is active, and whatever a record passes as ``extra={"fields": {...}}``.
The access line (logger ``ai1net.access``, level INFO) holds only the fields of `log_call`:
no prompt, no output, no header, no key.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import queue
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO

import orjson
from opentelemetry import trace

ACCESS_LOGGER = "ai1net.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

access_log = logging.getLogger(ACCESS_LOGGER)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            document["trace_id"] = trace.format_trace_id(context.trace_id)
            document["span_id"] = trace.format_span_id(context.span_id)
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            document.update(fields)
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(document, default=str).decode()


def configure_logging(level: str, *, json: bool = True,
                      stream: IO[str] | None = None) -> logging.handlers.QueueListener:
    """Root logging at ``level`` (a name such as INFO), one line per record on ``stream``
    (default stderr), replacing any handlers already there."""
    numeric = logging.getLevelNamesMapping().get(level.strip().upper())
    if numeric is None:
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    # The event loop only enqueues records; a thread formats and writes them, so a
    # slow terminal or disk never stalls calls in flight.
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler, respect_handler_level=True)
    listener.start()
    atexit.register(_stop, listener)
    logging.basicConfig(level=numeric, handlers=[_RecordQueue(records)], force=True)
    return listener  # stop() writes out what is queued (tests, shutdown)


def _stop(listener: logging.handlers.QueueListener) -> None:
    with contextlib.suppress(AttributeError):  # already stopped: nothing left to write
        listener.stop()


class _RecordQueue(logging.handlers.QueueHandler):
    """Hands records over as they are: the formatter runs in the listener's thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:
            record.msg, record.args = record.getMessage(), None
        return record


def log_call(*, request_id: str, method: str, model: str, outcome: str, latency_ms: float,
             input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0,
             overhead_ms: float | None = None, logger: logging.Logger = access_log) -> None:
    """The access line of one call; log it while the call's span is still current."""
    if not logger.isEnabledFor(logging.INFO):
        return
    context = trace.get_current_span().get_span_context()
    fields = {
        "request_id": request_id,
        "trace_id": trace.format_trace_id(context.trace_id) if context.is_valid else None,
        "method": method,
        "model": model,
        "outcome": outcome,
        "latency_ms": round(latency_ms, 3),
        "overhead_ms": None if overhead_ms is None else round(overhead_ms, 3),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
    }
    logger.info("%s %s %s %.1fms", method, model or "-", outcome, latency_ms,
                extra={"fields": fields})
