from __future__ import annotations

import io
from typing import Any

import msgspec
import pytest
import structlog

from eventrouter.observability.logging import BufferedSink, configure_logging, flush_logs


def test_json_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("x").info("hello", n=1)
    structlog.get_logger("x").debug("hidden")
    flush_logs()
    (line,) = stream.getvalue().splitlines()
    record = msgspec.json.decode(line)
    assert record["event"] == "hello" and record["n"] == 1 and record["level"] == "info"
    assert record["timestamp"].endswith("Z")


def test_console_lines() -> None:
    stream = io.StringIO()
    configure_logging("console", "debug", stream=stream)
    structlog.get_logger("x").debug("visible", key="value")
    assert "visible" in stream.getvalue() and "key=value" in stream.getvalue()


def test_auto_picks_json_off_a_tty() -> None:
    stream = io.StringIO()
    configure_logging("auto", stream=stream)
    structlog.get_logger("x").info("auto")
    flush_logs()
    assert msgspec.json.decode(stream.getvalue())["event"] == "auto"


def test_bad_level_and_format() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging("json", "loud")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "info")  # type: ignore[arg-type]


def test_sink_flushes_when_full_and_survives_closed_stream() -> None:
    out = io.BytesIO()
    sink = BufferedSink(out, flush_bytes=10)
    sink.write(b"0123456789")
    assert out.getvalue() == b"0123456789\n"
    out.close()
    sink.write(b"x" * 20)  # must not raise


def test_unencodable_values_are_logged_by_repr() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("x").info("odd", value=object())
    flush_logs()
    record: dict[str, Any] = msgspec.json.decode(stream.getvalue())
    assert record["value"].startswith("<object object")
