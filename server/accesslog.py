"""JSON logs: a formatter for every record, and one access line per call.

A JSON line holds ``ts``, ``level``, ``logger``, ``msg``, the current ``trace_id`` and
``span_id`` when a span is active, and whatever a record passes as ``extra={"fields": {...}}``.
The access line (logger ``ai1net.access``, level INFO) holds only the fields of `log_call`:
no prompt, no output, no header, no key.
"""

from __future__ import annotations

import atexit
import functools
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, NamedTuple

import orjson
from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext

ACCESS_LOGGER = "ai1net.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
ACCESS_MESSAGE = "%s %s %s %.1fms"

access_log = logging.getLogger(ACCESS_LOGGER)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # The span current where the record was made (the writer thread has none).
        context = getattr(record, "span_context", None) \
            or trace.get_current_span().get_span_context()
        fields = getattr(record, "fields", None)
        return self.line(record.created, record.levelname, record.name, record.getMessage(),
                         context, fields if isinstance(fields, Mapping) else None,
                         self.formatException(record.exc_info) if record.exc_info else None)

    @staticmethod
    def line(created: float, level: str, logger: str, message: str, context: SpanContext,
             fields: Mapping[str, object] | None, exc: str | None = None) -> str:
        document: dict[str, object] = {
            "ts": timestamp(created),
            "level": level,
            "logger": logger,
            "msg": message,
        }
        if context.is_valid:
            document["trace_id"] = f"{context.trace_id:032x}"
            document["span_id"] = f"{context.span_id:016x}"
        if fields:
            document.update(fields)
        if exc:
            document["exc"] = exc
        return orjson.dumps(document, default=str).decode()


def timestamp(created: float) -> str:
    """``created`` as ISO 8601 in UTC to the millisecond, as ``datetime.isoformat`` writes
    it, with each second's text made once (every log line needs one)."""
    second, fraction = divmod(created, 1)
    micros = round(fraction * 1_000_000)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    return f"{_utc_second(int(second))}.{micros // 1000:03d}+00:00"


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def configure_logging(level: str, *, json: bool = True,
                      stream: IO[str] | None = None) -> LogWriter:
    """Root logging at ``level`` (a name such as INFO), one line per record on ``stream``
    (default stderr), replacing any handlers already there."""
    numeric = logging.getLevelNamesMapping().get(level.strip().upper())
    if numeric is None:
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    # Lines name no source file, thread or process: skip finding them for every record.
    logging._srcfile = None  # the logging HOWTO's "Optimization" section
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    records: queue.SimpleQueue[Queued] = queue.SimpleQueue()
    writer = LogWriter(records, stream, JsonFormatter() if json else logging.Formatter(TEXT_FORMAT))
    writer.start()
    atexit.register(writer.stop)
    handler = _RecordQueue(records)
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
    return writer  # stop() writes out what is queued (tests, shutdown)


class _AccessLine(NamedTuple):
    """An access line queued as it is: the writer's thread makes the line (or, for a text
    format, the record) from it."""

    created: float
    span_context: SpanContext
    request_id: str
    method: str
    model: str
    outcome: str
    latency_ms: float
    overhead_ms: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float

    def message(self) -> tuple[str, tuple[object, ...]]:
        return ACCESS_MESSAGE, (self.method, self.model or "-", self.outcome, self.latency_ms)

    def fields(self) -> dict[str, object]:
        context = self.span_context
        return {
            "request_id": self.request_id,
            "trace_id": context.trace_id.to_bytes(16).hex() if context.is_valid else None,
            "method": self.method,
            "model": self.model,
            "outcome": self.outcome,
            "latency_ms": round(self.latency_ms, 3),
            "overhead_ms": None if self.overhead_ms is None else round(self.overhead_ms, 3),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
        }

    def record(self) -> logging.LogRecord:
        message, args = self.message()
        record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, "", 0, message, args, None)
        record.created, record.msecs = self.created, self.created % 1 * 1000
        record.fields, record.span_context = self.fields(), self.span_context
        return record

    def json_line(self) -> bytes:
        """The JSON line `JsonFormatter` makes of `record`, byte for byte and newline ended,
        made directly from the same message and fields, without a record: two thirds of the
        formatter's time (the writer thread contends with the event loop for the
        interpreter's lock and the core, so its time is the calls' time)."""
        context, fields = self.span_context, self.fields()
        message, args = self.message()
        # The formatter writes the record's trace and span ids after the message; the
        # fields' trace_id then keeps that place (a key repeated in a display stays first).
        ids = {"trace_id": fields["trace_id"], "span_id": context.span_id.to_bytes(8).hex()} \
            if context.is_valid else {}
        return orjson.dumps({"ts": timestamp(self.created), "level": "INFO",
                             "logger": ACCESS_LOGGER, "msg": message % args, **ids, **fields},
                            option=orjson.OPT_APPEND_NEWLINE)


Queued = logging.LogRecord | _AccessLine | None


class LogWriter:
    """The thread that formats queued records and writes them out: the event loop only
    enqueues, so a slow terminal or disk never stalls calls in flight. Whatever is waiting
    goes out in one write, at most every ``interval`` seconds, so a busy gateway does not
    wake the thread for each line."""

    def __init__(self, records: queue.SimpleQueue[Queued],
                 stream: IO[str] | None, formatter: logging.Formatter,
                 interval: float = 0.02) -> None:
        self._records = records
        self._stream = stream
        self._formatter = formatter
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ai1net-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write out what is queued and end the thread; later calls do nothing."""
        if self._thread.is_alive():
            self._stopping.set()
            self._records.put(None)
            self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._records.get()]
            while not self._records.empty() and len(batch) < 10_000:
                batch.append(self._records.get_nowait())
            self._write([record for record in batch if record is not None])
            if self._stopping.is_set() and self._records.empty():
                return
            self._stopping.wait(self._interval)

    def _write(self, records: list[logging.LogRecord | _AccessLine]) -> None:
        lines: list[bytes] = []
        json = isinstance(self._formatter, JsonFormatter)
        for queued in records:
            if isinstance(queued, _AccessLine):
                if json:
                    lines.append(queued.json_line())
                    continue
                text = self._formatter.format(queued.record())
            else:
                try:
                    text = self._formatter.format(queued)
                except Exception:  # a bad record must not end the logging
                    text = f"unformattable log record from {queued.name}: {queued.msg!r}"
            lines.append(text.encode("utf-8", "backslashreplace") + b"\n")
        stream = self._stream or sys.stderr  # today's stderr, as StreamHandler does
        if lines:
            data = b"".join(lines)
            try:
                binary = getattr(stream, "buffer", None)
                if binary is None:  # a text-only stream (io.StringIO)
                    stream.write(data.decode())
                    stream.flush()
                else:
                    stream.flush()  # whatever was written as text first goes out first
                    binary.write(data)
                    binary.flush()
            except (OSError, ValueError):  # closed or broken: nowhere left to say it
                pass


class _RecordQueue(logging.handlers.QueueHandler):
    """Hands records over as they are: the formatter runs in the writer's thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:
            record.msg, record.args = record.getMessage(), None
        if not hasattr(record, "span_context"):
            record.span_context = trace.get_current_span().get_span_context()
        return record


def log_call(*, request_id: str, method: str, model: str, outcome: str, latency_ms: float,
             input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0,
             overhead_ms: float | None = None, span: Span | None = None,
             logger: logging.Logger = access_log) -> None:
    """The access line of one call: the call's ``span``, or the current one (log it while
    the call's span is still current)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    line = _AccessLine(time.time(),
                       (span or trace.get_current_span()).get_span_context(), request_id,
                       method, model, outcome, latency_ms, overhead_ms, input_tokens,
                       output_tokens, cost_usd)
    records = _writer_only(logger) if logger is access_log else None
    if records is not None:  # nothing else would see the record: skip logging's machinery
        records.put_nowait(line)
        return
    message, args = line.message()
    logger.info(message, *args, extra={"fields": line.fields(), "span_context": line.span_context})


def _writer_only(logger: logging.Logger) -> queue.SimpleQueue[Queued] | None:
    """The writer's queue when the writer is all that would see ``logger``'s records: no
    other handler or filter on the way to the root, and the root's one handler is the one
    `configure_logging` installed (logging's own configuration says so: no copy of it here)."""
    handlers = logging.root.handlers
    if len(handlers) != 1 or not isinstance(handlers[0], _RecordQueue) or logger.disabled:
        return None
    handler = handlers[0]
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    if logging.root.filters or handler.filters:
        return None
    return handler.queue  # type: ignore[return-value]  # the SimpleQueue configure_logging made
