"""Timeouts and concurrency under load.

1,000 asynchronous invocations of a handler that overruns its timeout (it sleeps twenty
times longer), with reserved concurrency, no retries and an ``on_failure`` destination (an
embedded queue). Each must end as timed out within ``timeout + 50 ms`` of its handler
starting: from the handler's first line to the moment the timeout cancels it (its
``finally``); the time until its failure record is committed to the destination is reported
beside it, and every record must say "Task timed out". A sampler
reads the function's in-flight count every millisecond (and the handler counts itself); the
reservation must never be exceeded. Meanwhile another function is invoked synchronously in a
loop: its throughput under this load against its throughput alone, in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import msgspec

from benchmarks.common import progress, summarize
from eventrouter import Context, Router, to_queue
from eventrouter.observability.logging import configure_logging
from eventrouter.testing import run_router

TIMEOUT = 0.2
RESERVED = 100
MARGIN = 0.05


async def _measure(n: int, steady_seconds: float) -> dict[str, Any]:
    router = Router("bench-timeouts", max_concurrency=1000)
    started: dict[str, float] = {}
    stopped: dict[str, float] = {}
    ended: dict[str, float] = {}
    timed_out = 0
    inside = 0
    most_inside = 0
    all_ended = anyio.Event()

    @router.on_event(
        name="overrun",
        timeout=TIMEOUT,
        reserved_concurrency=RESERVED,
        max_retries=0,
        on_failure=to_queue("timed-out"),
    )
    async def overrun(event: Any, ctx: Context) -> None:
        nonlocal inside, most_inside
        started[ctx.aws_request_id] = time.perf_counter()
        inside += 1
        most_inside = max(most_inside, inside)
        try:
            await anyio.sleep(TIMEOUT * 20)
        finally:  # the timeout cancels the handler here
            stopped[ctx.aws_request_id] = time.perf_counter()
            inside -= 1

    @router.on_event(name="steady")
    async def steady(event: Any) -> None:
        return None

    def on_delivery(function: str, kind: str, record: bytes, error: BaseException | None) -> None:
        nonlocal timed_out
        if function != "overrun" or error is not None:
            return
        now = time.perf_counter()
        doc = msgspec.json.decode(record)
        ended[doc["requestContext"]["requestId"]] = now
        if "Task timed out" in (doc.get("responsePayload") or {}).get("errorMessage", ""):
            timed_out += 1
        if len(ended) == n:
            all_ended.set()

    async def steady_rate(stop: Callable[[], bool]) -> float:
        count = 0
        start = time.perf_counter()
        while not stop():
            await app.invoke("steady", {"n": count})
            count += 1
            # An inline no-op invoke never suspends: yield, as separate callers would.
            await anyio.lowlevel.checkpoint()
        return count / (time.perf_counter() - start)

    sampled: list[int] = []

    async def sample(slots: Any) -> None:
        while not all_ended.is_set():
            sampled.append(slots.in_flight)
            await anyio.sleep(0.001)

    async with run_router(router) as app:
        app.engine.delivery_listeners.append(on_delivery)
        deadline = time.perf_counter() + steady_seconds
        alone = await steady_rate(lambda: time.perf_counter() >= deadline)
        under_load = 0.0
        begin = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample, app.engine.slots.functions["overrun"])

            async def load() -> None:
                nonlocal under_load
                under_load = await steady_rate(all_ended.is_set)

            tg.start_soon(load)
            async with anyio.create_task_group() as producers:
                for _ in range(n):
                    producers.start_soon(app.invoke_async, "overrun", {"work": "too much"})
            with anyio.fail_after(60 + n * TIMEOUT / RESERVED * 5):
                await all_ended.wait()
        wall = time.perf_counter() - begin
    elapsed = sorted(stopped[rid] - started[rid] for rid in ended if rid in started)
    delivered = sorted(ended[rid] - started[rid] for rid in ended if rid in started)
    late = sum(1 for e in elapsed if e > TIMEOUT + MARGIN)
    return {
        "invocations": n,
        "timeout_s": TIMEOUT,
        "reserved_concurrency": RESERVED,
        "wall_s": wall,
        "timed_out": timed_out,
        "completed": len(elapsed),
        "late": late,
        "over_timeout_ms": _over(elapsed),
        "record_delivered_over_timeout_ms": _over(delivered),
        "max_in_flight_sampled": max(sampled),
        "samples": len(sampled),
        "max_in_flight_counted": most_inside,
        "steady_alone_per_s": alone,
        "steady_under_load_per_s": under_load,
    }


def _over(elapsed: list[float]) -> dict[str, float]:
    """Milliseconds past the timeout: p50, p99, max."""
    return {
        "p50": (statistics.median(elapsed) - TIMEOUT) * 1000,
        "p99": (elapsed[max(0, int(len(elapsed) * 0.99) - 1)] - TIMEOUT) * 1000,
        "max": (elapsed[-1] - TIMEOUT) * 1000,
    }


def run(quick: bool = False) -> dict[str, Any]:
    n = 100 if quick else 1_000
    runs = 1 if quick else 3
    rounds = []
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        for r in range(runs):
            progress(f"timeouts round {r + 1}/{runs}: {n:,} invocations overrunning {TIMEOUT} s")
            rounds.append(anyio.run(_measure, n, 0.2 if quick else 1.0))
    ratios = [r["steady_under_load_per_s"] / r["steady_alone_per_s"] for r in rounds]
    return {
        "invocations": n,
        "timeout_s": TIMEOUT,
        "margin_s": MARGIN,
        "reserved_concurrency": RESERVED,
        "rounds": rounds,
        "late": sum(r["late"] for r in rounds),
        "not_timed_out": sum(r["invocations"] - r["timed_out"] for r in rounds),
        "max_over_timeout_ms": summarize([r["over_timeout_ms"]["max"] for r in rounds]),
        "p99_over_timeout_ms": summarize([r["over_timeout_ms"]["p99"] for r in rounds]),
        "record_max_over_timeout_ms": summarize(
            [r["record_delivered_over_timeout_ms"]["max"] for r in rounds]
        ),
        "max_in_flight": max(
            max(r["max_in_flight_sampled"], r["max_in_flight_counted"]) for r in rounds
        ),
        "steady_under_load_vs_alone": summarize(ratios),
        "met": all(r["late"] == 0 and r["timed_out"] == r["invocations"] for r in rounds)
        and all(
            max(r["max_in_flight_sampled"], r["max_in_flight_counted"]) <= RESERVED for r in rounds
        ),
    }
