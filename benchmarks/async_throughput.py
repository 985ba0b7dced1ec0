"""(b) Asynchronous invoke end to end through the SQLite queue: events/s.

Producers: 500 concurrent tasks calling ``invoke_async`` (each returns once its event is
committed). The clock stops when the no-op handler has run for every event and the store has
deleted them all. Baseline, same run: the same SQLite work written by hand (insert in
transactions of 100 rows, then select and delete in transactions of 100 rows), no framework.

The cost of durability: the same run with the queue in an in-memory SQLite database (same
code, same group commits, nothing on disk), as a ratio.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import produce, progress, summarize
from eventrouter import Router
from eventrouter.observability.logging import configure_logging
from eventrouter.runtime.engine import Engine
from eventrouter.store.schema import SCHEMA
from eventrouter.store.sqlite import EventStore
from eventrouter.testing import RouterUnderTest, run_router

TARGET_EVENTS_PER_S = 10_000.0


def bare_sqlite(n: int, folder: Path) -> float:
    """Events/s for insert + select + delete by hand, batches of 100 per transaction."""
    db = sqlite3.connect(folder / "bare.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, payload BLOB, due REAL)")
    db.execute("CREATE INDEX q_due ON q (due)")
    payload = b'{"order_id":"o-1","amount":12.5}'
    start = time.perf_counter()
    for i in range(0, n, 100):
        db.execute("BEGIN")
        db.executemany("INSERT INTO q (payload, due) VALUES (?, ?)", [(payload, i)] * 100)
        db.execute("COMMIT")
    while True:
        db.execute("BEGIN")
        rows = db.execute("SELECT id, payload FROM q ORDER BY due LIMIT 100").fetchall()
        if not rows:
            db.execute("COMMIT")
            break
        db.executemany("DELETE FROM q WHERE id = ?", [(r[0],) for r in rows])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return n / elapsed


class MemoryStore(EventStore):
    """The embedded queue with its database in memory: durability's cost, by difference."""

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(SCHEMA)
        return conn


@asynccontextmanager
async def run_in_memory(router: Router, folder: Path) -> AsyncIterator[RouterUnderTest]:
    engine = Engine(router, state_dir=folder)
    engine.store = engine.policy.store = MemoryStore(folder, consumer=True)
    await engine.start()
    try:
        yield RouterUnderTest(engine)
    finally:
        await engine.shutdown()


async def routed(n: int, folder: Path, memory: bool = False) -> float:
    router = Router("bench")
    done = anyio.Event()
    count = 0

    @router.on_event(name="noop")
    async def noop(event: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    payload = {"order_id": "o-1", "amount": 12.5}
    running = run_in_memory(router, folder) if memory else run_router(router, state_dir=folder)
    async with running as app:
        start = time.perf_counter()
        await produce(app, ["noop"], n, payload)
        await done.wait()
        await app.engine.store.flush()  # the deletes are committed too
        elapsed = time.perf_counter() - start
        assert await app.engine.store.count() == 0
    return n / elapsed


def run(quick: bool = False) -> dict[str, Any]:
    n = 2_000 if quick else 50_000
    runs = 1 if quick else 5
    rates: dict[str, list[float]] = {"router": [], "memory": [], "bare": []}
    for r in range(runs):  # interleaved, so that noise hits all three alike
        progress(f"async invoke round {r + 1}/{runs}: {n:,} events, on disk / in memory / bare")
        with tempfile.TemporaryDirectory() as tmp:
            rates["bare"].append(bare_sqlite(n, Path(tmp)))
        for memory in (False, True):
            with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
                # The default level: one REPORT line per invocation, to a file.
                configure_logging("json", "info", stream=log)
                rate = anyio.run(routed, n, Path(tmp) / "state", memory)
                rates["memory" if memory else "router"].append(rate)
    router_stats = summarize(rates["router"])
    memory_stats = summarize(rates["memory"])
    bare_stats = summarize(rates["bare"])
    return {
        "events": n,
        "eventrouter_events_per_s": router_stats,
        "in_memory_events_per_s": memory_stats,
        "bare_sqlite_events_per_s": bare_stats,
        "ratio_to_bare_sqlite": router_stats["median"] / bare_stats["median"],
        "durable_vs_in_memory": router_stats["median"] / memory_stats["median"],
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "met": router_stats["median"] >= TARGET_EVENTS_PER_S,
    }
