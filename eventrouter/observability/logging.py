"""structlog set-up: console lines on a TTY, JSON lines otherwise, written through a buffer.

The REPORT record of every invocation goes through here, so the JSON path is kept cheap: a
short processor chain, msgspec for encoding, and a sink that collects the lines of one
event-loop iteration into a single write (or writes at once past 64 KiB, or off the loop).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
from typing import IO, Any, Literal

import msgspec
import structlog

from eventrouter.observability.function_logs import log_capture, record_text

LogFormat = Literal["auto", "console", "json"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class BufferedSink:
    """Collects encoded lines and writes them once per event-loop iteration."""

    def __init__(self, stream: IO[bytes] | _BytesAdapter, flush_bytes: int = 65_536) -> None:
        self._stream = stream
        self._flush_bytes = flush_bytes
        self._buffer = bytearray()
        self._lock = threading.Lock()
        self._scheduled = False

    def write(self, line: bytes) -> None:
        with self._lock:
            self._buffer += line
            self._buffer += b"\n"
            full = len(self._buffer) >= self._flush_bytes
            schedule = not (full or self._scheduled)
            self._scheduled = self._scheduled or schedule
        if full:
            self.flush()
            return
        if schedule:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # not on the loop's thread: no iteration to wait for
                self.flush()

    def flush(self) -> None:
        with self._lock:
            data, self._buffer = self._buffer, bytearray()
            self._scheduled = False
        if data:
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):  # closed pipe or stream: logs must never crash work
                pass


class SinkLogger:
    """The structlog "logger": takes the rendered bytes of a record."""

    def __init__(self, sink: BufferedSink) -> None:
        self._sink = sink

    def msg(self, message: bytes) -> None:
        self._sink.write(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class ConsoleLogger(SinkLogger):
    """Human-readable lines, written at once."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def msg(self, message: Any) -> None:
        try:
            self._stream.write(f"{message}\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


_json_encoder = msgspec.json.Encoder(enc_hook=repr)


def _capture(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Records logged while an Invoke API call asks for the log tail are kept for it (the
    lines a function wrote, its standard-library records and REPORT are kept where they are
    made, in their own form)."""
    captured = log_capture.get()
    if captured is not None and not (
        "stream" in event_dict or "logger" in event_dict or event_dict.get("event") == "REPORT"
    ):
        captured.append((event_dict.get("request_id"), "record", event_dict))
    return event_dict


#: Field names whose values are secrets wherever they appear (also inside dicts and lists).
_SECRET_FIELD = re.compile(
    r"secret|passw|token|signature|authorization|api[-_]?key|credential|private[-_]?key|cookie",
    re.IGNORECASE,
)
#: Secrets inside free text: SigV4 signatures and credential scopes, bearer tokens.
_SECRET_TEXT = [
    (re.compile(r"(Signature=)[0-9a-fA-F]{16,}"), r"\1[REDACTED]"),
    (re.compile(r"(Credential=)[^,\s]+"), r"\1[REDACTED]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1[REDACTED]"),
]
REDACTED = "[REDACTED]"
#: The router's own secrets (configured keys), replaced wherever they appear in text.
_known_secrets: re.Pattern[str] | None = None


_known_list: list[str] = []


def redact_secrets(secrets: list[str]) -> None:
    """Add ``secrets`` to the strings no log record may contain."""
    global _known_secrets
    known = set(_known_list) | {s for s in secrets if s}
    _known_list[:] = sorted(known, key=len, reverse=True)
    pattern = "|".join(re.escape(s) for s in _known_list)
    _known_secrets = re.compile(pattern) if pattern else None


def redact_text(text: str) -> str:
    if _known_secrets is not None:
        text = _known_secrets.sub(REDACTED, text)
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _scrub(key: Any, value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(key, str) and _SECRET_FIELD.search(key):
        return REDACTED
    if depth > 8:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (bytes, bytearray)):
        return redact_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {k: _scrub(k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # [(name, value)] header lists: the name decides.
        if value and all(
            isinstance(i, (list, tuple)) and len(i) == 2 and isinstance(i[0], (str, bytes))
            for i in value
        ):
            return [(n, _scrub(_text(n), v, depth + 1)) for n, v in value]
        return [_scrub(key, v, depth + 1) for v in value]
    return value


def _text(name: str | bytes) -> str:
    return name if isinstance(name, str) else name.decode("latin-1")


def _redact(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Secrets never reach a log: values of secret-named fields, configured keys, signatures."""
    return {k: _scrub(k, v) for k, v in event_dict.items()}


def _render_json(_: Any, __: str, event_dict: dict[str, Any]) -> bytes:
    return _json_encoder.encode(event_dict)


_sink: BufferedSink | None = None
#: Whether records at info level are written at all.
_info_enabled = True


class _Clock:
    """ISO-8601 UTC timestamps to the millisecond (Lambda's precision), formatted once a
    millisecond: at thousands of invocations a second most REPORT records reuse the text."""

    __slots__ = ("millisecond", "second", "second_text", "text")

    def __init__(self) -> None:
        self.millisecond = -1
        self.second = -1
        self.second_text = ""
        self.text = ""

    def now(self) -> str:
        millisecond = int(time.time() * 1000)
        if millisecond != self.millisecond:
            self.millisecond = millisecond
            second = millisecond // 1000
            if second != self.second:
                self.second = second
                self.second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.text = f"{self.second_text}.{millisecond % 1000:03d}Z"
        return self.text


clock = _Clock()
_report_logger = structlog.get_logger("eventrouter")


class Report(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The REPORT record of one invocation, as a Struct: encoding it costs half a dict's."""

    request_id: str
    function: str
    status: str
    duration_ms: float
    billed_duration_ms: int
    memory_size_mb: int
    max_memory_used_mb: int | None = None
    init_duration_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    restore_duration_ms: float | None = None
    event: str
    level: str
    timestamp: str


def report(
    request_id: str,
    function: str,
    status: str,
    duration_ms: float,
    billed_duration_ms: int,
    memory_size_mb: int,
    init_duration_ms: float | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    max_memory_used_mb: int | None = None,
    restore_duration_ms: float | None = None,
) -> None:
    """Write the REPORT record of one invocation.

    ``max_memory_used_mb`` is the peak resident memory of a process environment (inline
    functions share the router's process, so they report none).

    In JSON mode the record is encoded straight into the sink (a fraction of structlog's
    cost on the per-invocation path) with the keys structlog would write (``event``,
    ``level``, ``timestamp``); in console mode it goes through structlog like every other
    record.
    """
    captured = log_capture.get()
    if captured is not None:
        captured.append(
            (
                request_id,
                "report",
                {
                    "duration_ms": duration_ms,
                    "billed_duration_ms": billed_duration_ms,
                    "memory_size_mb": memory_size_mb,
                    "max_memory_used_mb": max_memory_used_mb,
                    "init_duration_ms": init_duration_ms,
                    "restore_duration_ms": restore_duration_ms,
                },
            )
        )
    sink = _sink
    if sink is None:
        fields: dict[str, Any] = {
            "request_id": request_id,
            "function": function,
            "status": status,
            "duration_ms": duration_ms,
            "billed_duration_ms": billed_duration_ms,
            "memory_size_mb": memory_size_mb,
        }
        if max_memory_used_mb is not None:
            fields["max_memory_used_mb"] = max_memory_used_mb
        if init_duration_ms is not None:
            fields["init_duration_ms"] = init_duration_ms
        if restore_duration_ms is not None:
            fields["restore_duration_ms"] = restore_duration_ms
        if error_type is not None:
            fields["error_type"] = error_type
            fields["error_message"] = error_message
        _report_logger.info("REPORT", **fields)
        return
    if not _info_enabled:
        return
    if error_message is not None:
        error_message = redact_text(error_message)
    line = _json_encoder.encode(
        Report(
            request_id=request_id,
            function=function,
            status=status,
            duration_ms=duration_ms,
            billed_duration_ms=billed_duration_ms,
            memory_size_mb=memory_size_mb,
            max_memory_used_mb=max_memory_used_mb,
            init_duration_ms=init_duration_ms,
            error_type=error_type,
            error_message=error_message,
            restore_duration_ms=restore_duration_ms,
            event="REPORT",
            level="info",
            timestamp=clock.now(),
        )
    )
    sink.write(line)


def configure_logging(
    fmt: LogFormat = "auto", level: str = "info", stream: IO[str] | None = None
) -> None:
    """Configure structlog for the whole process.

    ``fmt="auto"`` picks console lines on a TTY and JSON lines otherwise.
    """
    global _sink, _info_enabled
    stream = stream if stream is not None else sys.stderr
    if level.lower() not in _LEVELS:
        raise ValueError(f"log level {level!r} is not one of {', '.join(_LEVELS)}")
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    if _sink is not None:
        _sink.flush()
    _info_enabled = _LEVELS[level.lower()] <= _LEVELS["info"]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact,
        _capture,
    ]
    logger_factory: Any
    if fmt == "json":
        binary: IO[bytes] | _BytesAdapter = getattr(stream, "buffer", None) or _BytesAdapter(stream)
        _sink = BufferedSink(binary)
        sink = _sink
        processors = [*shared, _render_json]

        def logger_factory(*_: Any) -> SinkLogger:
            return SinkLogger(sink)
    elif fmt == "console":
        _sink = None
        processors = [*shared, structlog.dev.ConsoleRenderer(colors=stream.isatty())]

        def logger_factory(*_: Any) -> SinkLogger:
            return ConsoleLogger(stream)
    else:
        raise ValueError(f"log format {fmt!r} is not one of auto, console, json")
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level.lower()]),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    # Libraries that log through the standard library (aiokafka, botocore, uvicorn) end up
    # on the same stream, in the same format, unless the program set up its own handlers.
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StdlibToStructlog)]:
        root.removeHandler(handler)
    if not root.handlers:
        root.addHandler(StdlibToStructlog())
        root.setLevel(max(_LEVELS[level.lower()], logging.WARNING))


class StdlibToStructlog(logging.Handler):
    """A standard-library record as one of ours (``logger`` names where it came from)."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record_text(self, record)
        if message is None:
            return
        method = getattr(_stdlib_logger, record.levelname.lower(), _stdlib_logger.info)
        method(message, logger=record.name)


_stdlib_logger = structlog.get_logger("eventrouter.stdlib")


def ensure_logging() -> None:
    """Configure logging as ``run`` does (to stderr, console on a TTY, JSON otherwise) unless
    someone already configured structlog: a router served as ``router.asgi()`` under another
    ASGI server logs where the CLI's would, never console lines on standard output."""
    if not structlog.is_configured():
        configure_logging()


def flush_logs() -> None:
    """Write out whatever the JSON sink still holds."""
    if _sink is not None:
        _sink.flush()


class _BytesAdapter:
    """Lets the sink write to a text stream that has no binary buffer (e.g. StringIO)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, data: bytes | bytearray) -> int:
        return self._stream.write(bytes(data).decode("utf-8", "replace"))

    def flush(self) -> None:
        self._stream.flush()


atexit.register(flush_logs)
