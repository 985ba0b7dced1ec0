"""(f) Process environments (``isolation="process"``) against inline, in the same run.

- cold start: wall time of the first invocation of a function in a new Python environment
  (process spawn, imports, init, the invocation), and the same through the Runtime API with
  AWS's ``awslambdaric``; the floor is spawning ``python -c pass``.
- warm invoke overhead: µs per invoke of a no-op handler in a warm environment minus the same
  handler inline (both through ``engine.invoke``, REPORT records written).
- SnapStart: the cold start of a ``snapstart=True`` function (a fork of its initialised
  template) against spawning ``python -c pass`` (goal: at most 2x) and against the cold
  start above (goal: at least 10x faster).
- provisioned concurrency: the p99 latency of the first 100 invocations after a router
  starts (4 at a time), with 4 provisioned environments and without (on demand: the first 4
  are cold starts); runs alternate between the two.
- environments per GiB: 1 GiB over the proportional set size (PSS: shared pages split
  between the processes sharing them) of idle warm environments; the RSS figure, which counts
  shared libraries in full for each, is reported beside it.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.apps.isolated import noop
from benchmarks.common import progress, summarize
from eventrouter import Router
from eventrouter.observability.logging import configure_logging, flush_logs
from eventrouter.runtime.environments.environment import tree_rss_kb
from eventrouter.testing import run_router


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _bare_spawn_ms(runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return summarize(samples)


async def _measure(cold: int, n: int, runs: int) -> dict[str, Any]:
    router = Router("bench-environments", max_concurrency=100)
    router.on_event(name="inline")(noop)
    router.on_event(name="isolated", isolation="process")(noop)
    for i in range(cold):
        router.on_event(name=f"cold-{i}", isolation="process")(noop)
        router.on_event(name=f"snap-{i}", isolation="process", snapstart=True)(noop)
        router.external(
            f"ric-{i}",
            [sys.executable, "-m", "awslambdaric", "isolated.lambda_noop"],
            cwd=str(Path(__file__).parent / "apps"),
        )
    event = {"order_id": "o-1", "amount": 12.5}
    async with run_router(router) as app:
        invoke = app.engine.invoke
        python_cold, ric_cold, snap_cold = [], [], []
        for i in range(cold):
            start = time.perf_counter()
            await invoke(f"cold-{i}", event)
            python_cold.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await invoke(f"snap-{i}", event)  # a restore: forked from the snapshot
            snap_cold.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await invoke(f"ric-{i}", event)
            ric_cold.append((time.perf_counter() - start) * 1000)
        pids = [pid for i in range(cold) for pid in app.environments(f"cold-{i}")]
        pss = [_pss_kb(pid) / 1024 for pid in pids]
        rss = [tree_rss_kb(pid) / 1024 for pid in pids]
        await invoke("inline", event)
        await invoke("isolated", event)
        inline_us, isolated_us, overhead_us = [], [], []
        for _ in range(runs):
            start = time.perf_counter()
            for _ in range(n):
                await invoke("inline", event)
            inline = (time.perf_counter() - start) / n * 1e6
            start = time.perf_counter()
            for _ in range(n):
                await invoke("isolated", event)
            isolated = (time.perf_counter() - start) / n * 1e6
            inline_us.append(inline)
            isolated_us.append(isolated)
            overhead_us.append(isolated - inline)
        ric_us = []
        for _ in range(runs):
            start = time.perf_counter()
            for _ in range(n // 4):
                await invoke("ric-0", event)
            ric_us.append((time.perf_counter() - start) / (n // 4) * 1e6)
    return {
        "cold_start_ms": summarize(python_cold),
        "cold_start_runtime_api_ms": summarize(ric_cold),
        "cold_start_snapstart_ms": summarize(snap_cold),
        "inline_us": summarize(inline_us),
        "isolated_us": summarize(isolated_us),
        "isolation_overhead_us": summarize(overhead_us),
        "runtime_api_warm_us": summarize(ric_us),
        "environment_pss_mb": summarize(pss),
        "environment_rss_mb": summarize(rss),
        "environments_per_gib_pss": 1024 / summarize(pss)["median"],
        "environments_per_gib_rss": 1024 / summarize(rss)["median"],
    }


async def _first_invocations_p99(provisioned: int, count: int, concurrency: int) -> float:
    """p99 (ms) of the first ``count`` invocations of a new router, ``concurrency`` at once."""
    router = Router("bench-provisioned", max_concurrency=100)
    router.on_event(name="fn", isolation="process", provisioned_concurrency=provisioned)(noop)
    event = {"order_id": "o-1", "amount": 12.5}
    latencies: list[float] = []
    async with run_router(router) as app:

        async def caller() -> None:
            for _ in range(count // concurrency):
                start = time.perf_counter()
                await app.engine.invoke("fn", event)
                latencies.append((time.perf_counter() - start) * 1000)

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(caller)
    latencies.sort()
    return latencies[max(0, math.ceil(len(latencies) * 0.99) - 1)]


async def _provisioned(runs: int) -> dict[str, Any]:
    on_demand, provisioned = [], []
    for _ in range(runs):  # interleaved
        on_demand.append(await _first_invocations_p99(0, 100, 4))
        provisioned.append(await _first_invocations_p99(4, 100, 4))
    return {
        "first_100_p99_on_demand_ms": summarize(on_demand),
        "first_100_p99_provisioned_ms": summarize(provisioned),
    }


def run(quick: bool = False) -> dict[str, Any]:
    progress("process environments: cold starts, warm invokes, memory")
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log_file:
        configure_logging("json", "info", stream=log_file)
        result = anyio.run(_measure, 2 if quick else 8, 200 if quick else 5_000, 2 if quick else 5)
        result.update(anyio.run(_provisioned, 1 if quick else 5))
        flush_logs()
    result["bare_python_spawn_ms"] = _bare_spawn_ms(2 if quick else 8)
    result["cold_start_vs_bare_spawn"] = (
        result["cold_start_ms"]["median"] / result["bare_python_spawn_ms"]["median"]
    )
    result["snapstart_vs_bare_spawn"] = (
        result["cold_start_snapstart_ms"]["median"] / result["bare_python_spawn_ms"]["median"]
    )
    result["snapstart_speedup"] = (
        result["cold_start_ms"]["median"] / result["cold_start_snapstart_ms"]["median"]
    )
    result["provisioned_speedup"] = (
        result["first_100_p99_on_demand_ms"]["median"]
        / result["first_100_p99_provisioned_ms"]["median"]
    )
    result["isolated_vs_inline"] = result["isolated_us"]["median"] / result["inline_us"]["median"]
    return result
