"""(a) Synchronous in-process invoke of a no-op async handler vs a bare ``await handler(event)``,
with metrics on and off in the same rounds (what the Duration histogram and usage cost).

Logging stays at its default level (info), JSON lines to a file, so every invocation writes
its REPORT record, as in production.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import progress, summarize
from eventrouter import Router
from eventrouter.observability.logging import configure_logging, flush_logs
from eventrouter.testing import run_router

TARGET_US = 3.0
#: What metrics (the Duration histogram, usage accounting) may add to one invocation.
METRICS_TARGET_US = 1.0


async def noop(event: Any) -> None:
    return None


async def _measure(n: int, runs: int) -> dict[str, Any]:
    router = Router("bench")
    router.on_event(name="noop")(noop)
    event = {"order_id": "o-1", "amount": 12.5}
    base: list[float] = []
    overhead: list[float] = []
    overhead_off: list[float] = []
    metrics_cost: list[float] = []
    async with run_router(router) as app:
        invoke = app.engine.invoke
        metrics = app.engine.metrics
        await invoke("noop", event)  # the cold start is not what is measured

        async def routed(enabled: bool) -> float:
            metrics.enabled = enabled
            start = time.perf_counter()
            for _ in range(n):
                await invoke("noop", event)
            return time.perf_counter() - start

        for i in range(runs):
            start = time.perf_counter()
            for _ in range(n):
                await noop(event)
            bare = time.perf_counter() - start
            # Metrics on and off in the same round, in alternating order.
            if i % 2:
                off, on = await routed(False), await routed(True)
            else:
                on, off = await routed(True), await routed(False)
            base.append(bare / n * 1e6)
            overhead.append((on - bare) / n * 1e6)
            overhead_off.append((off - bare) / n * 1e6)
            metrics_cost.append((on - off) / n * 1e6)
        metrics.enabled = True
    return {
        "bare_await_us": summarize(base),
        "overhead_us": summarize(overhead),
        "overhead_metrics_off_us": summarize(overhead_off),
        "metrics_cost_us": summarize(metrics_cost),
    }


async def _traced(n: int, runs: int) -> dict[str, float] | None:
    """The same invoke with OpenTelemetry's SDK tracing it (a span per invocation, no
    exporter): what ``Router(tracing=provider)`` costs. ``None`` without the SDK."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    router = Router("bench-traced", tracing=TracerProvider())
    router.on_event(name="noop")(noop)
    event = {"order_id": "o-1", "amount": 12.5}
    samples = []
    async with run_router(router) as app:
        invoke = app.engine.invoke
        await invoke("noop", event)
        for _ in range(runs):
            start = time.perf_counter()
            for _ in range(n):
                await noop(event)
            bare = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(n):
                await invoke("noop", event)
            samples.append((time.perf_counter() - start - bare) / n * 1e6)
    return summarize(samples)


def run(quick: bool = False) -> dict[str, Any]:
    progress("synchronous invoke vs a bare await")
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "log.jsonl"
        with open(log_path, "w") as log_file:
            configure_logging("json", "info", stream=log_file)
            result = anyio.run(_measure, 2_000 if quick else 50_000, 2 if quick else 7)
            result["traced_overhead_us"] = anyio.run(
                _traced, 1_000 if quick else 10_000, 2 if quick else 5
            )
            flush_logs()
        with open(log_path) as written:
            reports = sum(1 for line in written if '"REPORT"' in line)
    result["report_lines_written"] = reports
    result["target_us"] = TARGET_US
    result["met"] = result["overhead_us"]["median"] <= TARGET_US
    result["metrics_target_us"] = METRICS_TARGET_US
    result["metrics_met"] = result["metrics_cost_us"]["median"] <= METRICS_TARGET_US
    return result
