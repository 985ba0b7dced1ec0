"""Shared helpers: repeat a measurement, keep the median, min and max."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

import anyio

#: Concurrent producers calling ``invoke_async`` in the asynchronous scenarios.
PRODUCERS = 500


async def produce(
    app: Any, names: list[str], n: int, payload: Any, producers: int = PRODUCERS
) -> None:
    """Queue ``n`` asynchronous invocations of ``names`` (round robin) from ``producers``
    concurrent tasks, each awaiting its commit before the next."""

    async def producer(k: int) -> None:
        for i in range(k, n, producers):
            await app.invoke_async(names[i % len(names)], payload)

    async with anyio.create_task_group() as tg:
        for k in range(min(producers, n)):
            tg.start_soon(producer, k)


def summarize(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def repeat(measure: Callable[[], float], runs: int) -> dict[str, float]:
    return summarize([measure() for _ in range(runs)])


_STARTED = time.perf_counter()

#: The packages whose versions go into the results: ours, the peers, the clients.
PACKAGES = (
    "eventrouter",
    "anyio",
    "msgspec",
    "structlog",
    "uvicorn",
    "uvloop",
    "httptools",
    "aiokafka",
    "aiobotocore",
    "moto",
    "fastapi",
    "faststream",
    "faust-streaming",
    "pydantic",
    "matplotlib",
)


def progress(message: str) -> None:
    """One line on stderr, with the seconds since the benchmarks started."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s]   {message}", file=sys.stderr, flush=True)


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "packages": versions,
    }


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
