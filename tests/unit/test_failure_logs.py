"""A failed invocation is visible in the router's log: ERROR with the user's traceback, and
an asynchronous event's end as one WARNING naming where it went."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventrouter.observability.logging import configure_logging, flush_logs
from eventrouter.testing import run_router
from tests.apps.failing import router

ROOT = Path(__file__).resolve().parents[2]


def _invoke(name: str, tmp_path: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "eventrouter", "invoke", name, "tests.apps.failing:router",
         "--state-dir", str(tmp_path), "--log-format", "json", "--log-level", "warning"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return [msgspec.json.decode(line) for line in done.stderr.splitlines() if line]


@pytest.mark.parametrize("name", ["boom", "boom_in_thread"])
def test_a_failed_invocation_is_an_error_line_with_the_users_frames(
    name: str, tmp_path: Path
) -> None:
    records = _invoke(name, tmp_path)
    failed = [r for r in records if r["event"] == "invocation failed"]
    assert len(failed) == 1, records
    line = failed[0]
    assert line["level"] == "error" and line["function"] == name and line["attempt"] == 1
    assert line["error_type"] == "ValueError" and line["error_message"].startswith("cannot charge")
    trace = line["traceback"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "tests/apps/failing.py" in trace and "in _charge" in trace and f"in {name}" in trace
    assert trace.rstrip().endswith("ValueError: " + line["error_message"])
    # Lambda's runtime shows the user's frames, not its own.
    assert "eventrouter/" not in trace and "concurrent/futures" not in trace
    # Under --log-level warning the REPORT lines are gone, the failure is not.
    assert not [r for r in records if r["event"] == "REPORT"]


@pytest.mark.anyio
async def test_an_asynchronous_events_end_is_one_warning_naming_its_destination() -> None:
    stream = io.StringIO()
    configure_logging("json", "warning", stream=stream)
    async with run_router(router) as app:
        await app.invoke_async("exhausted", {})
        record = await app.next_record("exhausted", "on_failure")
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        await app.invoke_async("exhausted_nowhere", {})
        await app.drain()
    flush_logs()
    lines = [msgspec.json.decode(line) for line in stream.getvalue().splitlines()]
    ended = {r["function"]: r for r in lines if r["event"] == "event failed"}
    assert set(ended) == {"exhausted", "exhausted_nowhere"}, lines
    assert ended["exhausted"]["level"] == "warning"
    assert ended["exhausted"]["condition"] == "RetriesExhausted"
    assert ended["exhausted"]["error"] == "ValueError"
    assert ended["exhausted"]["destination"].startswith("directory")
    assert ended["exhausted_nowhere"]["destination"].startswith("none")
    errors = [r for r in lines if r["event"] == "invocation failed"]
    assert {r["function"] for r in errors} == {"exhausted", "exhausted_nowhere"}
