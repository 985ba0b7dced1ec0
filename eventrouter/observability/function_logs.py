"""What a handler prints belongs to its invocation.

Inline functions share the router's process, so ``sys.stdout`` / ``sys.stderr`` are replaced,
while the router runs, by streams that know the invocation in flight (a context variable the
invoker sets): a line written inside an invocation becomes a log record in the router's
format, tagged with the request id and function; outside one it goes to the real stream. The
standard library's ``logging`` records of an invocation are turned into records the same way.
Process environments send their output through pipes the router reads
(``runtime/environments/pool.py``), tagging each line with the environment's invocation.

Everything logged for an invocation can also be collected (``log_capture``) for the Invoke
API's ``X-Amz-Log-Type: Tail``, which :func:`tail` renders as Lambda does: its text format
(``START`` / the function's lines / ``END`` / ``REPORT``), or its JSON format.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import IO, Any

import msgspec
import structlog

from eventrouter.arns import LATEST

#: One entry of a captured invocation log: ``(request_id, kind, data)``, kind being
#: ``"text"`` (a line the function wrote), ``"record"`` (a structured record), ``"log"`` (a
#: standard library record) or ``"report"`` (the REPORT figures).
Entry = tuple[str | None, str, Any]

#: While set, every record and line logged in this context is appended here (the Invoke
#: API's ``X-Amz-Log-Type: Tail``).
log_capture: ContextVar[list[Entry] | None] = ContextVar("eventrouter_log_capture", default=None)

_log = structlog.get_logger("eventrouter.function")


class Invocation:
    """The invocation a task (or a handler's worker thread) is running: who a line belongs to."""

    __slots__ = ("emitting", "function", "pending", "request_id")

    def __init__(self, request_id: str, function: str) -> None:
        self.request_id = request_id
        self.function = function
        self.emitting = False
        #: Text written without its newline yet, per stream.
        self.pending: dict[str, str] | None = None

    def write(self, stream: str, text: str) -> None:
        pending = self.pending
        if pending is not None and stream in pending:
            text = pending.pop(stream) + text
        *lines, rest = text.split("\n")
        for line in lines:
            emit_line(self.function, self.request_id, stream, line)
        if rest:
            if self.pending is None:
                self.pending = {}
            self.pending[stream] = rest

    def finish(self) -> None:
        """The invocation ended: write out lines left without their newline."""
        if self.pending:
            for stream, rest in self.pending.items():
                emit_line(self.function, self.request_id, stream, rest)
            self.pending = None


current_invocation: ContextVar[Invocation | None] = ContextVar(
    "eventrouter_invocation", default=None
)


def emit_line(
    function: str,
    request_id: str | None,
    stream: str,
    line: str,
    capture: list[Entry] | None = None,
) -> None:
    """One line a function wrote: a record in the router's log, and in the captured tail."""
    captured = log_capture.get() if capture is None else capture
    if captured is not None:
        captured.append((request_id, "text", line))
    _log.info(line, stream=stream, request_id=request_id, function=function)


def emit_record(
    function: str, request_id: str | None, record: dict[str, Any], capture: list[Entry] | None
) -> None:
    """A structured record a process environment logged: re-logged with its invocation."""
    if capture is not None:
        capture.append((request_id, "record", record))
    fields = {k: v for k, v in record.items() if k not in ("event", "level", "timestamp")}
    fields.setdefault("request_id", request_id)
    fields.setdefault("function", function)
    level = str(record.get("level", "info")).lower()
    method = getattr(_log, level if level in _LEVEL_METHODS else "info")
    token = log_capture.set(None)  # kept above in its own form, not a second time
    try:
        method(str(record.get("event", "")), **fields)
    finally:
        log_capture.reset(token)


_LEVEL_METHODS = ("debug", "info", "warning", "error", "critical")
_decode_record = msgspec.json.Decoder(dict[str, Any])


def relay(
    function: str, request_id: str | None, stream: str, raw: bytes, capture: list[Entry] | None
) -> None:
    """One line from a process environment's stdout / stderr, tagged with its invocation.

    A Python environment writes its records as JSON lines (what its handler printed or
    logged already carries the request id); anything else (a runtime of another language, a
    subprocess, C code) is the environment's text output.
    """
    text = raw.decode("utf-8", "replace")
    if text.startswith("{"):
        try:
            record = _decode_record.decode(raw)
        except msgspec.DecodeError:
            record = None
        if record is not None and "event" in record:
            rid = record.get("request_id") or request_id
            if "stream" in record:
                emit_line(function, rid, str(record["stream"]), str(record["event"]), capture)
            elif "logger" in record:
                level = str(record.get("level", "info")).upper()
                if capture is not None:
                    stamp = str(record.get("timestamp", ""))
                    capture.append((rid, "log", (level, stamp, str(record["event"]))))
                emit_record(function, rid, record, None)
            else:
                emit_record(function, rid, record, capture)
            return
    emit_line(function, request_id, stream, text, capture)


class InvocationStream:
    """``sys.stdout`` / ``sys.stderr`` while a router runs: lines written inside an invocation
    are that invocation's log records; anything else goes to the real stream."""

    def __init__(self, original: IO[str], name: str) -> None:
        self.original = original
        self.name = name

    def write(self, text: str) -> int:
        invocation = current_invocation.get()
        if invocation is None or invocation.emitting:
            # Outside an invocation, or the record we are emitting for one (structlog's
            # default logger prints to sys.stdout): the real stream.
            return self.original.write(text)
        invocation.emitting = True
        try:
            invocation.write(self.name, text)
        finally:
            invocation.emitting = False
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.original.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, buffer...
        return getattr(self.original, name)


def record_text(handler: logging.Handler, record: logging.LogRecord) -> str | None:
    """A standard-library record's message, with its exception's traceback; ``None`` (and
    the handler's error report) when its format string is bad: a log never fails work."""
    try:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
    except Exception:  # noqa: BLE001 - a bad format string must not fail the handler
        handler.handleError(record)
        return None
    return message


class InvocationLogHandler(logging.Handler):
    """Standard library records logged inside an invocation, as the invocation's records."""

    def emit(self, record: logging.LogRecord) -> None:
        invocation = current_invocation.get()
        if invocation is None:
            return
        message = record_text(self, record)
        if message is None:
            return
        captured = log_capture.get()
        if captured is not None:
            captured.append(
                (invocation.request_id, "log", (record.levelname, _iso(record.created), message))
            )
        method = getattr(_log, record.levelname.lower(), _log.info)
        method(
            message,
            logger=record.name,
            request_id=invocation.request_id,
            function=invocation.function,
        )


class _OutsideInvocations(logging.Filter):
    """The router's own standard-library handler leaves invocation records to ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return current_invocation.get() is None


class _Installed:
    """sys.stdout / sys.stderr are the process's: the streams are installed once, while any
    router runs (routers may overlap in one process, in tests)."""

    count = 0
    saved: tuple[Any, Any] | None = None
    handler: InvocationLogHandler | None = None
    outside = _OutsideInvocations()


def ensure_streams() -> None:
    """Put our streams back if someone replaced ``sys.stdout`` / ``sys.stderr`` while the
    router runs (pytest's output capture does, between the phases of a test)."""
    if not isinstance(sys.stdout, InvocationStream):
        sys.stdout = InvocationStream(sys.stdout, "stdout")
    if not isinstance(sys.stderr, InvocationStream):
        sys.stderr = InvocationStream(sys.stderr, "stderr")


@contextlib.contextmanager
def capturing_output() -> Iterator[None]:
    """Route what handlers print and log to their invocations while the block runs."""
    state = _Installed
    if state.count == 0:
        state.saved = sys.stdout, sys.stderr
        sys.stdout = InvocationStream(sys.stdout, "stdout")
        sys.stderr = InvocationStream(sys.stderr, "stderr")
        root = logging.getLogger()
        for other in root.handlers:
            other.addFilter(state.outside)
        state.handler = InvocationLogHandler()
        root.addHandler(state.handler)
    state.count += 1
    try:
        yield
    finally:
        state.count -= 1
        if state.count == 0:
            root = logging.getLogger()
            if state.handler is not None:
                root.removeHandler(state.handler)
            for other in root.handlers:
                other.removeFilter(state.outside)
            assert state.saved is not None
            # Put back only what is still ours (someone may have replaced it meanwhile).
            if isinstance(sys.stdout, InvocationStream):
                sys.stdout = state.saved[0]
            if isinstance(sys.stderr, InvocationStream):
                sys.stderr = state.saved[1]


# -- the tail of the Invoke API --------------------------------------------------------------

_json = msgspec.json.Encoder(enc_hook=repr)


def _iso(epoch: float) -> str:
    ms = int(epoch * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def tail(
    entries: list[Entry],
    request_id: str,
    log_format: str,
    error: dict[str, Any] | None,
    timed_out: bool,
) -> list[str]:
    """The log lines of invocation ``request_id``, as Lambda's log stream shows them."""
    own = [(kind, data) for rid, kind, data in entries if rid == request_id]
    report: dict[str, Any] = next((data for kind, data in own if kind == "report"), {})
    now = time.time()
    lines: list[str] = []
    text = log_format == "Text"
    if text:
        lines.append(f"START RequestId: {request_id} Version: {LATEST}")
    else:
        lines.append(_platform("platform.start", {"requestId": request_id, "version": LATEST}))
    for kind, data in own:
        if kind == "text":
            lines.append(data)
        elif kind == "record":
            lines.append(_json.encode(data).decode())
        elif kind == "log":
            level, created, message = data
            if text:
                lines.append(f"[{level}]\t{created}\t{request_id}\t{message}")
            else:
                lines.append(
                    _json.encode(
                        {
                            "timestamp": created,
                            "level": level,
                            "message": message,
                            "requestId": request_id,
                        }
                    ).decode()
                )
    if error is not None:
        lines.append(_error_line(error, request_id, text, timed_out, now))
    metrics = {
        "durationMs": report.get("duration_ms", 0.0),
        "billedDurationMs": report.get("billed_duration_ms", 0),
        "memorySizeMB": report.get("memory_size_mb", 0),
        "maxMemoryUsedMB": report.get("max_memory_used_mb") or _router_peak_mb(),
    }
    if report.get("init_duration_ms") is not None:
        metrics["initDurationMs"] = report["init_duration_ms"]
    if report.get("restore_duration_ms") is not None:
        metrics["restoreDurationMs"] = report["restore_duration_ms"]
        metrics["billedRestoreDurationMs"] = math.ceil(report["restore_duration_ms"])
    if text:
        lines.append(f"END RequestId: {request_id}")
        line = (
            f"REPORT RequestId: {request_id}\tDuration: {metrics['durationMs']:.2f} ms\t"
            f"Billed Duration: {metrics['billedDurationMs']} ms\t"
            f"Memory Size: {metrics['memorySizeMB']} MB\t"
            f"Max Memory Used: {metrics['maxMemoryUsedMB']} MB\t"
        )
        if "initDurationMs" in metrics:
            line += f"Init Duration: {metrics['initDurationMs']:.2f} ms\t"
        if "restoreDurationMs" in metrics:
            line += (
                f"Restore Duration: {metrics['restoreDurationMs']:.2f} ms\t"
                f"Billed Restore Duration: {metrics['billedRestoreDurationMs']} ms\t"
            )
        lines.append(line)
    else:
        status = "timeout" if timed_out else "error" if error is not None else "success"
        lines.append(
            _platform(
                "platform.report", {"requestId": request_id, "metrics": metrics, "status": status}
            )
        )
    return lines


def _platform(kind: str, record: dict[str, Any]) -> str:
    return _json.encode({"time": _iso(time.time()), "type": kind, "record": record}).decode()


def _error_line(
    error: dict[str, Any], request_id: str, text: bool, timed_out: bool, now: float
) -> str:
    """The function's error, as Lambda's runtime writes it to the log."""
    if timed_out:
        # Lambda writes the timeout itself, with the time and request id.
        return f"{_iso(now)} {error['errorMessage']}"
    if text:
        trace = "".join(error.get("stackTrace") or [])
        head = f"[ERROR] {error['errorType']}: {error['errorMessage']}"
        return f"{head}\nTraceback (most recent call last):\n{trace}".rstrip("\n")
    return _json.encode(
        {
            "timestamp": _iso(now),
            "level": "ERROR",
            "message": error["errorMessage"],
            "logger": "root",
            "requestId": request_id,
            "errorType": error["errorType"],
            "errorMessage": error["errorMessage"],
            "stackTrace": error.get("stackTrace") or [],
        }
    ).decode()


def _router_peak_mb() -> int:
    """An inline function shares the router's process: its peak resident memory (MB)."""
    import resource

    return max(1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def tail_bytes(lines: list[str], limit: int) -> bytes:
    """The last ``limit`` bytes of the log, as Lambda's ``LogResult``."""
    return "".join(f"{line}\n" for line in lines).encode()[-limit:]
