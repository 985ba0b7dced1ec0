"""Schedules and the event bus.

(a) End to end, in process: events/s from 500 concurrent producers to a no-op rule target,
    through ``router.put_events`` and through ``ctx.send(to_bus(...))`` from a function,
    against ``invoke_async`` of the same no-op (the Invoke API's ``Event`` path) in the same
    rounds, interleaved.
(b) Over HTTP: wrk (16 connections) against ``python -m eventrouter run --http``: EventBridge's
    ``PutEvents`` (one entry per request) vs the Invoke API with ``X-Amz-Invocation-Type:
    Event``; requests/s, and end to end (until the queue is empty).
(c) Matching: µs per event with 10, 100, 1,000 and 10,000 rules on a bus (goal: 10,000 rules
    cost at most 2x 10), and a scan of every rule for comparison.
(d) 10,000 schedules firing at once (``rate(5 seconds)``, one anchor): fire lateness p50 /
    p99 / max and memory per schedule (traced allocations while registering and starting:
    each schedule is a function of its own), against APScheduler 3 (``AsyncIOScheduler``, in
    memory, not durable) with the same 10,000 interval jobs.
(e) One schedule's lateness (fired and invoked) while another function's 20,000-event
    backlog is being consumed.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
import time
import timeit
import tracemalloc
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec

from benchmarks.common import (
    PRODUCERS,
    WRK_DONE,
    produce,
    progress,
    router_process,
    run_wrk,
    summarize,
)
from eventrouter import Context, EventBus, EventRule, Router, Schedule, to_bus
from eventrouter.bus.index import RuleIndex
from eventrouter.filters import compile_pattern
from eventrouter.observability.logging import configure_logging
from eventrouter.sources.schedule.scheduler import Scheduler
from eventrouter.testing import run_router
from tests.services import free_port

MATCH_GOAL = 2.0
ENTRY = {"Source": "bench", "DetailType": "tick", "Detail": '{"n":1}', "EventBusName": "bench"}


# -- (a) in process ------------------------------------------------------------------------


def _scheduler(running: Iterable[object]) -> Scheduler:
    """The router's scheduler (one for all its schedules)."""
    return next(r for r in running if isinstance(r, Scheduler))


async def end_to_end(kind: str, n: int, folder: Path) -> float:
    router = Router("bench", buses=[EventBus("bench")])
    done = anyio.Event()
    count = 0

    @router.on_event(EventRule(bus="bench", pattern={"source": ["bench"]}), name="target")
    @router.on_event(name="noop")
    async def noop(event: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    @router.on_event(name="publish")
    async def publish(event: Any, ctx: Context) -> None:
        await ctx.send(to_bus("bench", source="bench", detail_type="tick"), event)

    async with run_router(router, state_dir=folder) as app:
        start = time.perf_counter()
        if kind == "invoke_async":
            await produce(app, ["noop"], n, {"n": 1})
        else:

            async def producer(k: int) -> None:
                for _ in range(k, n, PRODUCERS):
                    if kind == "put_events":
                        await router.put_events([ENTRY])
                    else:
                        await app.engine.invoke("publish", {"n": 1})

            async with anyio.create_task_group() as tg:
                for k in range(min(PRODUCERS, n)):
                    tg.start_soon(producer, k)
        await done.wait()
        await app.engine.store.flush()
        elapsed = time.perf_counter() - start
    return n / elapsed


# -- (b) over HTTP ----------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%(body)s]]
%(headers)s
"""
HTTP_CALLS = {
    "put_events": (
        "/",
        msgspec.json.encode({"Entries": [ENTRY]}).decode(),
        {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"},
    ),
    "invoke_event": (
        "/2015-03-31/functions/noop/invocations",
        '{"n":1}',
        {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"},
    ),
}


def _queued(state: Path) -> int:
    with sqlite3.connect(state / "queue.db", timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def http_round(kind: str, url: str, state: Path, folder: Path, seconds: int) -> dict[str, float]:
    path, body, headers = HTTP_CALLS[kind]
    script = folder / f"{kind}.lua"
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script.write_text(WRK_SCRIPT % {"body": body, "headers": lines} + WRK_DONE)
    start = time.perf_counter()
    requests, duration = run_wrk(script, url + path, seconds)
    accepted_at = time.perf_counter()
    while _queued(state):  # measuring, not synchronising: the queue is another process's
        time.sleep(0.02)
    drained = time.perf_counter()
    return {
        "rps": requests / duration,
        "end_to_end": requests / (drained - start),
        "drain_s": drained - accepted_at,
    }


def over_http(quick: bool) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (make bench installs it)"}
    rounds, seconds = (1, 1) if quick else (3, 4)
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in HTTP_CALLS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        state = folder / "state"
        with router_process("benchmarks.apps.bus_noop:router", folder, free_port()) as url:
            for r in range(rounds):
                for kind in HTTP_CALLS if r % 2 == 0 else reversed(list(HTTP_CALLS)):
                    progress(f"events over HTTP round {r + 1}/{rounds}: {kind}")
                    samples[kind].append(http_round(kind, url, state, folder, seconds))
    out: dict[str, Any] = {
        kind: {f: summarize([s[f] for s in rows]) for f in rows[0]}
        for kind, rows in samples.items()
    }
    out["put_vs_invoke_rps"] = (
        out["put_events"]["rps"]["median"] / out["invoke_event"]["rps"]["median"]
    )
    out["put_vs_invoke_end_to_end"] = (
        out["put_events"]["end_to_end"]["median"] / out["invoke_event"]["end_to_end"]["median"]
    )
    return out


# -- (c) matching -----------------------------------------------------------------------------


def _rules(count: int, rng: random.Random) -> list[dict[str, Any]]:
    rules = []
    for i in range(count):
        pattern: dict[str, Any] = {"source": [f"app{i % max(1, count // 4)}"]}
        pattern["detail-type"] = [f"type{i % 7}"]
        if i % 3 == 0:
            pattern["detail"] = {"total": [{"numeric": [">", rng.randint(0, 100)]}]}
        rules.append(pattern)
    return rules


def matching(quick: bool) -> dict[str, Any]:
    rng = random.Random(16)
    out: dict[str, Any] = {}
    for count in (10, 100, 1_000, 10_000):
        patterns = _rules(count, rng)
        matchers = [compile_pattern(p) for p in patterns]
        index = RuleIndex(
            (p, m, i) for i, (p, m) in enumerate(zip(patterns, matchers, strict=True))
        )
        events = [
            {
                "source": f"app{rng.randrange(max(1, count // 4))}",
                "detail-type": f"type{rng.randrange(7)}",
                "detail": {"total": rng.randint(0, 100)},
            }
            for _ in range(50 if quick else 1000)
        ]
        loops = 1 if quick else 5

        def indexed(events: list[dict[str, Any]] = events, index: Any = index) -> None:
            for e in events:
                index.match(e)

        def scan(events: list[dict[str, Any]] = events, matchers: Any = matchers) -> None:
            for e in events:
                [m(e) for m in matchers]

        per = [t / len(events) * 1e6 for t in timeit.repeat(indexed, number=1, repeat=loops)]
        scans = [t / len(events) * 1e6 for t in timeit.repeat(scan, number=1, repeat=1)]
        out[str(count)] = {"indexed_us": summarize(per), "scan_us": summarize(scans)}
        progress(f"matching, {count:,} rules: {summarize(per)['median']:.2f} µs/event")
    ratio = out["10000"]["indexed_us"]["median"] / out["10"]["indexed_us"]["median"]
    return {
        "by_rules": out,
        "ratio_10000_vs_10": ratio,
        "goal": MATCH_GOAL,
        "met": ratio <= MATCH_GOAL,
    }


# -- (d) 10,000 schedules ---------------------------------------------------------------------


async def many_schedules(count: int, period: int, folder: Path, seconds: float) -> dict[str, Any]:
    tracemalloc.start()
    router = Router("bench")
    for i in range(count):
        expression = f"rate({period} second{'s' if period > 1 else ''})"
        router.on_event(Schedule(expression), name=f"s{i}")(_noop)
    async with run_router(router, state_dir=folder) as app:
        memory_kb = tracemalloc.get_traced_memory()[0] / 1024 / count
        tracemalloc.stop()
        await anyio.sleep(seconds)
        scheduler = _scheduler(app.engine.running.values())
        lateness = sorted(scheduler.lateness)
    return _lateness(lateness) | {"fires": len(lateness), "kb_per_schedule": memory_kb}


async def _noop(event: Any) -> None:
    return None


def _lateness(values: list[float]) -> dict[str, float]:
    values = sorted(values) or [float("nan")]
    return {
        "p50_ms": values[len(values) // 2] * 1000,
        "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))] * 1000,
        "max_ms": values[-1] * 1000,
    }


async def apscheduler_peer(count: int, period: int, seconds: float) -> dict[str, Any]:
    from apscheduler.events import EVENT_JOB_MISSED  # type: ignore[import-untyped]
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

    tracemalloc.start()
    lateness: list[float] = []
    missed = 0
    t0 = time.time()

    async def job() -> None:
        lateness.append((time.time() - t0) % period)

    def on_missed(event: Any) -> None:
        nonlocal missed
        missed += 1

    scheduler = AsyncIOScheduler()
    scheduler.add_listener(on_missed, EVENT_JOB_MISSED)
    start = datetime.fromtimestamp(t0 + period)
    for _ in range(count):
        scheduler.add_job(job, "interval", seconds=period, next_run_time=start)
    scheduler.start()
    memory_kb = tracemalloc.get_traced_memory()[0] / 1024 / count
    tracemalloc.stop()
    await anyio.sleep(seconds)
    scheduler.shutdown(wait=False)
    return _lateness(lateness) | {
        "fires": len(lateness),
        "missed": missed,
        "kb_per_schedule": memory_kb,
    }


# -- (e) lateness under a saturated queue ------------------------------------------------------


async def under_load(backlog: int, folder: Path, seconds: float) -> dict[str, Any]:
    router = Router("bench", max_concurrency=50)
    invoked: list[float] = []

    @router.on_event(Schedule("rate(1 second)"))
    async def tick(event: dict[str, Any]) -> None:
        due = datetime.fromisoformat(event["time"].replace("Z", "+00:00")).timestamp()
        invoked.append(time.time() - due)

    @router.on_event(name="busy")
    async def busy(event: Any) -> None:
        await anyio.sleep(0.001)

    async with run_router(router, state_dir=folder) as app:
        await produce(app, ["busy"], backlog, {"n": 1})
        queued = await app.engine.store.count("fn:busy")
        await anyio.sleep(seconds)
        scheduler = _scheduler(app.engine.running.values())
        fired = list(scheduler.lateness)
        left = await app.engine.store.count("fn:busy")
    return {
        "backlog": backlog,
        "backlog_at_start": queued,
        "backlog_left": left,
        "fired": _lateness(fired),
        "invoked": _lateness(invoked),
        "fires": len(fired),
    }


# -- the scenario -----------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    n = 500 if quick else 20_000
    rounds = 1 if quick else 3
    rates: dict[str, list[float]] = {"invoke_async": [], "put_events": [], "ctx_send": []}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        for r in range(rounds):
            for kind in rates:
                progress(f"events end to end round {r + 1}/{rounds}: {kind}, {n:,} events")
                with tempfile.TemporaryDirectory() as state:
                    rates[kind].append(anyio.run(end_to_end, kind, n, Path(state)))
        count = 300 if quick else 10_000
        period, seconds = (1, 1.5) if quick else (5, 11.0)
        progress(f"{count:,} schedules, every {period} s, for {seconds:.0f} s: eventrouter")
        with tempfile.TemporaryDirectory() as state:
            ours = anyio.run(many_schedules, count, period, Path(state), seconds)
        progress(f"{count:,} interval jobs, every {period} s, for {seconds:.0f} s: APScheduler")
        peer = anyio.run(apscheduler_peer, count, period, seconds)
        backlog = 1_000 if quick else 20_000
        progress(f"one schedule's lateness while a {backlog:,}-event backlog drains")
        with tempfile.TemporaryDirectory() as state:
            loaded = anyio.run(under_load, backlog, Path(state), 1.5 if quick else 8.0)
    stats = {k: summarize(v) for k, v in rates.items()}
    base = stats["invoke_async"]["median"]
    return {
        "events": n,
        "in_process": stats,
        "put_events_vs_invoke_async": stats["put_events"]["median"] / base,
        "ctx_send_vs_invoke_async": stats["ctx_send"]["median"] / base,
        "http": over_http(quick),
        "matching": matching(quick),
        "schedules": {"count": count, "period_s": period, "eventrouter": ours, "apscheduler": peer},
        "under_load": loaded,
    }
