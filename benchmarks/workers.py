"""``run --workers``: the same router with 1 and 2 workers on this machine, rounds alternating.

- Asynchronous events end to end: 100,000 events of a no-op function are written into the
  state dir's queue first (by a producer engine, untimed); once every worker is ready the
  events still queued are counted and the clock runs until the queue is empty (polled every
  10 ms, read-only): events/s with every worker running.
- HTTP: wrk against a no-op route, 64 connections, 3 s: requests/s and the workers' CPU µs a
  request (from /proc). wrk competes with the workers for the same two cores here, so the
  HTTP figure says more about the cost per request than about scaling.

Not measured yet: Kafka records/s by workers.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import WRK_DONE, progress, run_wrk, summarize
from eventrouter.runtime.engine import Engine
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]
TARGET = "benchmarks.apps.workers_noop:router"
TARGET_SPEEDUP = 1.7


async def preload(state: Path, n: int) -> None:
    from benchmarks.apps.workers_noop import router

    async with Engine(router, state_dir=state, consume=False) as producer:
        payload = b"{}"
        for start in range(0, n, 500):
            async with anyio.create_task_group() as tg:
                for _ in range(min(500, n - start)):
                    tg.start_soon(producer.invoke_async, "work", payload)


def queued(state: Path) -> int:
    with sqlite3.connect(f"file:{state / 'queue.db'}?mode=ro", uri=True, timeout=30) as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def workers_of(proc: subprocess.Popen[bytes], workers: int) -> list[int]:
    """The processes serving: the workers of a supervisor, or ``run`` itself."""
    if workers == 1:
        return [proc.pid]
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]


def start(workers: int, folder: Path, port: int) -> subprocess.Popen[bytes]:
    log = open(folder / f"router-{workers}.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventrouter", "run", TARGET, "--workers", str(workers),
         "--http", f"127.0.0.1:{port}", "--log-format", "json",
         "--state-dir", str(folder / "state")],
        cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    log.close()
    return proc


def ready(proc: subprocess.Popen[bytes], folder: Path, workers: int) -> None:
    """Until every worker serves (one worker: ``run`` without a supervisor)."""
    deadline = time.monotonic() + 60
    path = folder / f"router-{workers}.log"
    mark = b'"workers started"' if workers > 1 else b'"router started"'
    while mark not in path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers did not start: {path.read_text()[-2000:]}")
        time.sleep(0.01)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)


def async_round(workers: int, n: int, folder: Path) -> float:
    """Events/s for ``workers`` draining ``n`` queued events."""
    shutil.rmtree(folder / "state", ignore_errors=True)
    anyio.run(preload, folder / "state", n)
    port = free_port()
    proc = start(workers, folder, port)
    try:
        ready(proc, folder, workers)
        began, left = time.perf_counter(), queued(folder / "state")
        while queued(folder / "state"):
            time.sleep(0.01)
        return left / (time.perf_counter() - began)
    finally:
        stop(proc)


def http_round(workers: int, folder: Path, seconds: int) -> tuple[float, float]:
    """Requests/s and the workers' CPU µs a request."""
    shutil.rmtree(folder / "state", ignore_errors=True)
    port = free_port()
    proc = start(workers, folder, port)
    try:
        ready(proc, folder, workers)
        pids = workers_of(proc, workers)
        script = folder / "wrk.lua"
        script.write_text(WRK_DONE)
        before = cpu_seconds(pids)
        requests, duration = run_wrk(script, f"http://127.0.0.1:{port}/noop", seconds, 64)
        cpu = cpu_seconds(pids) - before
        return requests / duration, cpu / requests * 1e6
    finally:
        stop(proc)


def run(quick: bool = False) -> dict[str, Any]:
    n = 20_000 if quick else 100_000
    rounds = 1 if quick else 3
    seconds = 1 if quick else 3
    events: dict[int, list[float]] = {1: [], 2: []}
    rps: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    with_wrk = shutil.which("wrk") is not None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for r in range(rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                progress(f"workers round {r + 1}/{rounds}: {workers} worker(s), {n:,} events")
                events[workers].append(async_round(workers, n, folder))
                if with_wrk:
                    progress(f"workers round {r + 1}/{rounds}: {workers} worker(s), HTTP")
                    per_s, us = http_round(workers, folder, seconds)
                    rps[workers].append(per_s)
                    cpu[workers].append(us)
    result: dict[str, Any] = {
        "events": n,
        "events_per_s": {str(w): summarize(v) for w, v in events.items()},
        "target_speedup": TARGET_SPEEDUP,
        "cpus": os.cpu_count(),
    }
    one = result["events_per_s"]["1"]["median"]
    result["speedup"] = result["events_per_s"]["2"]["median"] / one if one else 0.0
    result["met"] = result["speedup"] >= TARGET_SPEEDUP
    if with_wrk:
        result["http_rps"] = {str(w): summarize(v) for w, v in rps.items()}
        result["http_cpu_us"] = {str(w): summarize(v) for w, v in cpu.items()}
    return result
