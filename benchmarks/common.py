"""Shared helpers: repeat a measurement, keep the median, min and max."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
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
    from eventrouter.compiled import running_compiled

    return {
        "python": sys.version.split()[0],
        # Whether eventrouter's hot path ran compiled (make bench compiles it first).
        "compiled": running_compiled(),
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


ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def router_process(
    target: str, folder: Path, port: int, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``python -m eventrouter run target --http`` on ``port``, its state and log in ``folder``;
    its URL once ``GET /noop`` answers (the benchmark apps have that route); stopped after."""
    log = open(folder / "router.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventrouter", "run", target,
         "--http", f"127.0.0.1:{port}", "--log-format", "json",
         "--state-dir", str(folder / "state")],
        cwd=ROOT, stdout=log, stderr=log, env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/noop", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the router did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


#: wrk's end-of-run hook for the scripts of the HTTP scenarios: requests, seconds, errors.
WRK_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("REQUESTS %d %f\\n", summary.requests, summary.duration / 1e6))
  io.write(string.format("ERRORS %d\\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def wrk_output(script: Path, url: str, seconds: int, connections: int) -> str:
    """Run wrk (one thread) with ``script`` (whose ``done`` writes ``REQUESTS n seconds`` and
    ``ERRORS n``, as :data:`WRK_DONE` does): its output; ``RuntimeError`` if any request
    failed or answered other than 2xx/3xx."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"^ERRORS (\d+)$", out, re.M)
    if errors is None or int(errors.group(1)) or "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return out


def wrk_requests(out: str) -> tuple[int, float]:
    """``(requests, seconds)`` from wrk's output (:func:`wrk_output`)."""
    found = re.search(r"^REQUESTS (\d+) ([\d.]+)$", out, re.M)
    if found is None:
        raise RuntimeError(f"wrk wrote no REQUESTS line:\n{out}")
    return int(found.group(1)), float(found.group(2))


def run_wrk(script: Path, url: str, seconds: int, connections: int = 16) -> tuple[int, float]:
    """Run wrk with ``script`` (ending with :data:`WRK_DONE`): ``(requests, seconds)``."""
    return wrk_requests(wrk_output(script, url, seconds, connections))
