"""The one rule for a failing transport (``services/hiccups.py``): each failure logged with
its wait and counted for its function, waits doubling from 1 s to at most 30 s while failures
follow one another, and a success starting the count again."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from eventrouter.observability.metrics import Metrics
from eventrouter.services import hiccups as module
from eventrouter.services.hiccups import Hiccups


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits asked for, instead of waiting them."""
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(module.anyio, "sleep", sleep)
    return asked


@pytest.mark.anyio
async def test_failures_back_off_and_are_counted_and_logged(waits: list[float]) -> None:
    metrics = Metrics(enabled=True)
    hiccups = Hiccups("sqs receive failed", metrics, "orders", queue="q")
    with structlog.testing.capture_logs() as logs:
        for _ in range(7):
            await hiccups.failed(ConnectionError("reset"))
        hiccups.ok()
        await hiccups.failed(ConnectionError("reset"))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 1.0]
    assert metrics.snapshot()["SourceErrors"] == {"orders": 8}
    first: dict[str, Any] = logs[0]
    assert first["event"] == "sqs receive failed" and first["log_level"] == "error"
    assert first["function"] == "orders" and first["queue"] == "q"
    assert first["retry_in"] == 1.0 and "ConnectionError" in first["error"]


@pytest.mark.anyio
async def test_a_loop_without_a_function_logs_without_counting(waits: list[float]) -> None:
    hiccups = Hiccups("shard discovery failed", None, None, stream="arn:stream")
    with structlog.testing.capture_logs() as logs:
        await hiccups.failed(TimeoutError(), shard="s-1")
    assert waits == [1.0]
    assert logs[0]["stream"] == "arn:stream" and logs[0]["shard"] == "s-1"
    assert "function" not in logs[0]
