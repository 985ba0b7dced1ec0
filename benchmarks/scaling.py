"""How cost grows: with registered functions, payload size, invocations in flight and load.

- functions: 1, 100 and 1,000 registered no-op functions, invoked round robin; synchronous
  µs per invoke, and asynchronous events/s end to end through the durable queue.
- payload size: asynchronous invocations of 100 B, 10 KB and 1 MB JSON payloads end to end
  (events/s and MB/s; each payload is committed to SQLite, claimed, decoded and deleted).
  The HTTP scenario measures the same sizes through the Invoke API.
- memory per in-flight invocation: 10,000 asynchronous invocations of a handler that waits
  on an event, all running at once; RSS delta / 10,000. Floor, same process: 10,000 bare
  asyncio tasks waiting on an event.
- latency under load: the peak is the closed loop (500 producers calling ``invoke_async``
  as fast as they can); then the same producers paced at 50 % and 90 % of that rate, event i
  due at ``begin + i / rate``. An event's latency runs from the moment it was due (not from
  when a producer got round to sending it, so a backlog shows) to its handler starting.
  p50 / p99 / max, and the rate reached.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import PRODUCERS, produce, progress, summarize
from eventrouter import Router
from eventrouter.observability.logging import configure_logging
from eventrouter.runtime.environments.environment import tree_rss_kb
from eventrouter.testing import RouterUnderTest, run_router

FUNCTION_COUNTS = (1, 100, 1_000)
PAYLOAD_SIZES = (100, 10_000, 1_000_000)
IN_FLIGHT = 10_000
LOAD_LEVELS = (0.5, 0.9)


def _payload(size: int) -> dict[str, str]:
    """A JSON object of ``size`` bytes once encoded."""
    return {"data": "x" * (size - 11)}


async def functions_cost(count: int, n_sync: int, n_async: int) -> tuple[float, float]:
    """(µs per synchronous invoke, asynchronous events/s) with ``count`` functions."""
    router = Router("bench-functions")
    done = anyio.Event()
    seen = 0

    async def noop(event: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == n_async:
            done.set()

    names = [f"fn-{i:04d}" for i in range(count)]
    for name in names:
        router.on_event(name=name)(noop)
    event = {"order_id": "o-1", "amount": 12.5}
    async with run_router(router) as app:
        invoke = app.engine.invoke
        for name in names:  # every function's cold start out of the way
            await invoke(name, event)
        seen = 0
        start = time.perf_counter()
        for i in range(n_sync):
            await invoke(names[i % count], event)
        sync_us = (time.perf_counter() - start) / n_sync * 1e6
        seen = 0
        start = time.perf_counter()
        await produce(app, names, n_async, event, PRODUCERS)
        await done.wait()
        await app.engine.store.flush()
        rate = n_async / (time.perf_counter() - start)
    return sync_us, rate


async def payload_cost(size: int, n: int) -> float:
    """Asynchronous events/s end to end with ``size``-byte payloads."""
    router = Router("bench-payload")
    done = anyio.Event()
    seen = 0

    @router.on_event(name="sink")
    async def sink(event: dict[str, str]) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    payload = _payload(size)
    async with run_router(router) as app:
        start = time.perf_counter()
        # Fewer producers for large payloads: each holds its payload until committed.
        await produce(app, ["sink"], n, payload, max(1, min(PRODUCERS, 20_000_000 // size)))
        await done.wait()
        await app.engine.store.flush()
        return n / (time.perf_counter() - start)


async def bare_tasks_kb(count: int) -> float:
    """KB of RSS per bare asyncio task waiting on an event (the floor)."""
    gate = anyio.Event()
    started = 0
    all_in = anyio.Event()

    async def wait() -> None:
        nonlocal started
        started += 1
        if started == count:
            all_in.set()
        await gate.wait()

    gc.collect()
    before = tree_rss_kb(os.getpid())
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(wait)
        await all_in.wait()
        gc.collect()
        after = tree_rss_kb(os.getpid())
        gate.set()
    return (after - before) / count


async def in_flight_kb(count: int) -> float:
    """KB of RSS per asynchronous invocation in flight (``count`` at once)."""
    router = Router("bench-in-flight", max_concurrency=count)
    gate = anyio.Event()
    all_in = anyio.Event()
    inside = 0

    @router.on_event(name="sleeper", timeout=900)
    async def sleeper(event: dict[str, int]) -> None:
        nonlocal inside
        if event.get("warm"):
            return
        inside += 1
        if inside == count:
            all_in.set()
        await gate.wait()

    async with run_router(router) as app:
        await app.invoke("sleeper", {"warm": 1})  # its cold start out of the way
        gc.collect()
        before = tree_rss_kb(os.getpid())
        await produce(app, ["sleeper"], count, {"n": 1}, PRODUCERS)
        await all_in.wait()
        gc.collect()
        after = tree_rss_kb(os.getpid())
        gate.set()
        await app.drain()
    return (after - before) / count


async def latency_under_load(n_peak: int, seconds: float) -> dict[str, Any]:
    router = Router("bench-load")
    done = anyio.Event()
    expected = 0
    seen = 0
    due: list[float] = []
    latencies: list[float] = []

    @router.on_event(name="noop")
    async def noop(event: dict[str, int]) -> None:
        nonlocal seen
        seen += 1
        latencies.append(time.perf_counter() - due[event["i"]])
        if seen == expected:
            done.set()

    async def paced(app: RouterUnderTest, rate: float | None, total: int) -> float:
        """``PRODUCERS`` producers send ``total`` events, event i due at ``begin + i / rate``
        (all due at once: None, the closed loop that gives the peak); events/s handled."""
        nonlocal seen, expected, due, latencies, done
        seen, expected, latencies, done = 0, total, [], anyio.Event()
        begin = time.perf_counter() + 0.01
        due = [begin + (i / rate if rate else 0.0) for i in range(total)]
        next_i = 0

        async def produce() -> None:
            nonlocal next_i
            while next_i < total:
                i = next_i
                next_i += 1
                wait = due[i] - time.perf_counter()
                if wait > 0:
                    await anyio.sleep(wait)
                await app.invoke_async("noop", {"i": i})

        async with anyio.create_task_group() as tg:
            for _ in range(PRODUCERS):
                tg.start_soon(produce)
        await done.wait()
        return total / (time.perf_counter() - begin)

    result: dict[str, Any] = {}
    async with run_router(router) as app:
        peak = await paced(app, None, n_peak)
        result["peak_events_per_s"] = peak
        for level in LOAD_LEVELS:
            rate = peak * level
            total = int(rate * seconds)
            reached = await paced(app, rate, total)
            latencies.sort()
            result[f"{int(level * 100)}%"] = {
                "target_events_per_s": rate,
                "reached_events_per_s": reached,
                "events": total,
                "p50_ms": statistics.median(latencies) * 1000,
                "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
                "max_ms": latencies[-1] * 1000,
            }
    return result


def run(quick: bool = False) -> dict[str, Any]:
    runs = 1 if quick else 3
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)  # the default level: REPORT lines

        sync_us: dict[int, list[float]] = {c: [] for c in FUNCTION_COUNTS}
        async_rate: dict[int, list[float]] = {c: [] for c in FUNCTION_COUNTS}
        for r in range(runs):
            for count in FUNCTION_COUNTS:
                progress(f"cost growth round {r + 1}/{runs}: {count:,} registered functions")
                us, rate = anyio.run(
                    functions_cost, count, 2_000 if quick else 50_000, 2_000 if quick else 30_000
                )
                sync_us[count].append(us)
                async_rate[count].append(rate)
        result["functions"] = {
            str(c): {
                "sync_us": summarize(sync_us[c]),
                "async_events_per_s": summarize(async_rate[c]),
            }
            for c in FUNCTION_COUNTS
        }

        payload_rates: dict[int, list[float]] = {s: [] for s in PAYLOAD_SIZES}
        for r in range(runs):
            for size in PAYLOAD_SIZES:
                n = max(20, min(20_000, 2_000_000_000 // (size * 10)))
                n = min(n, 200) if quick else n
                progress(f"cost growth round {r + 1}/{runs}: {n:,} async events of {size:,} B")
                payload_rates[size].append(anyio.run(payload_cost, size, n))
        result["payloads"] = {
            str(s): {
                "events_per_s": summarize(payload_rates[s]),
                "mb_per_s": statistics.median(payload_rates[s]) * s / 1e6,
            }
            for s in PAYLOAD_SIZES
        }

        count = 500 if quick else IN_FLIGHT
        bare, routed = [], []
        for r in range(runs):
            progress(f"cost growth round {r + 1}/{runs}: {count:,} invocations in flight")
            bare.append(anyio.run(bare_tasks_kb, count))
            routed.append(anyio.run(in_flight_kb, count))
        result["in_flight"] = {
            "invocations": count,
            "kb_per_invocation": summarize(routed),
            "bare_task_kb": summarize(bare),
        }

        loads = []
        for r in range(runs):
            progress(f"cost growth round {r + 1}/{runs}: latency at 50 % and 90 % of peak")
            loads.append(
                anyio.run(latency_under_load, 2_000 if quick else 30_000, 0.3 if quick else 2.0)
            )
        result["load"] = {"peak_events_per_s": summarize([x["peak_events_per_s"] for x in loads])}
        for level in LOAD_LEVELS:
            key = f"{int(level * 100)}%"
            result["load"][key] = {
                figure: summarize([x[key][figure] for x in loads]) for figure in loads[0][key]
            }
    return result
