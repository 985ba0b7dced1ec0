"""HTTP: eventrouter's no-op route on its own server (the default) and on uvicorn, against
the no-framework limit (an asyncio Protocol over httptools answering a fixed response), a
bare raw-ASGI app on uvicorn (httptools, uvloop, no access log) and on granian (its Rust
server: one worker, one runtime thread, uvloop), Sanic, and FastAPI on uvicorn; and the same
function through the Invoke API. wrk loads them from a separate process at
1, 16 and 64 concurrent connections, contenders interleaved. eventrouter runs as users run it
(``python -m eventrouter run --http``) with logging at its default level: a REPORT line per
request, to a file.

Body sizes (16 connections): JSON bodies of 100 B, 10 KB and 1 MB POSTed to a route that
decodes them (typed handler), to the Invoke API, and to the bare ASGI app reading and
decoding the same body.

wrk reports requests/s and the latency percentiles (a Lua ``done`` hook prints them), from
which the latency distribution plot is drawn.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import progress, summarize, wrk_output, wrk_requests
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]
#: The goals: the route against bare ASGI and the limit (requests/s, every connection
#: count), the Invoke API against the route, 1 MB bodies against bare ASGI.
TARGETS = {
    "vs_bare": 1.0,
    "vs_sanic": 1.3,
    "vs_granian": 0.8,
    "vs_limit": 0.4,
    "invoke_vs_route": 0.9,
    "body_vs_bare": 1.0,
}
UVICORN = ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
GRANIAN = ["--interface", "asgi", "--workers", "1", "--runtime-threads", "1", "--loop", "uvloop",
           "--http", "1", "--no-ws", "--no-access-log", "--log-level", "warning"]  # fmt: skip


def command(kind: str, port: int, state: Path) -> list[str]:
    """How to start contender ``kind`` on ``port``."""
    if kind in ("eventrouter", "on_uvicorn"):
        cmd = [sys.executable, "-m", "eventrouter", "run", "benchmarks.apps.http_noop:router",
               "--http", f"127.0.0.1:{port}", "--log-format", "json",
               "--state-dir", str(state)]  # fmt: skip
        return cmd + (["--server", "uvicorn"] if kind == "on_uvicorn" else [])
    if kind == "limit":
        return [sys.executable, "-m", "benchmarks.apps.protocol_limit", str(port)]
    if kind == "granian":
        return [sys.executable, "-m", "granian", *GRANIAN, "--host", "127.0.0.1", "--port",
                str(port), "benchmarks.apps.bare_asgi:app"]  # fmt: skip
    if kind == "sanic":
        return [sys.executable, "-m", "sanic", "benchmarks.apps.sanic_app:app", "--port",
                str(port), "--single-process", "--no-access-logs"]  # fmt: skip
    app = {
        "bare_asgi": "benchmarks.apps.bare_asgi:app",
        "fastapi": "benchmarks.apps.fastapi_app:app",
    }
    return [sys.executable, "-m", "uvicorn", app[kind], *UVICORN, "--port", str(port)]


def start(cmd: list[str], port: int, log: Path, path: str = "/noop") -> subprocess.Popen[bytes]:
    """Start ``cmd`` (output to ``log``) and wait until ``path`` answers 200."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                if r.status == 200:
                    r.read()
                    return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


#: The wrk script: the request to send and, when done, the latency percentiles in µs.
WRK_SCRIPT = """
local size = %(size)d
if size > 0 then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"data":"' .. string.rep("x", size - 11) .. '"}'
end
done = function(summary, latency, requests)
  io.write(string.format("REQUESTS %%d %%f\\n", summary.requests, summary.duration / 1e6))
  io.write(string.format("ERRORS %%d\\n", summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.status + summary.errors.timeout))
  for _, p in ipairs({%(percentiles)s}) do
    io.write(string.format("P %%g %%d\\n", p, latency:percentile(p)))
  end
end
"""
#: The latency percentiles kept (the plot draws the distribution from them).
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99)
CONNECTIONS = (1, 16, 64)
PAYLOADS = (100, 10_000, 1_000_000)
PAYLOAD_CONNECTIONS = 16
INVOKE_PATH = "/2015-03-31/functions/noop/invocations"
#: The contenders of the no-op rows; the servers started for them (the Invoke API is served
#: by eventrouter's process).
KINDS = (
    "eventrouter",
    "on_uvicorn",
    "invoke_api",
    "limit",
    "bare_asgi",
    "granian",
    "sanic",
    "fastapi",
)
SERVED = ("eventrouter", "on_uvicorn", "limit", "bare_asgi", "granian", "sanic", "fastapi")
#: What the body-size rows POST to: the route (typed: the body decoded), the Invoke API,
#: the bare ASGI app (reads and decodes it).
BODY_KINDS = ("eventrouter", "invoke_api", "bare_asgi")
#: Request bodies: the routes are GETs; an invocation POSTs the smallest payload, {"data":"x"}.
BODY_BYTES = {"invoke_api": 12}


def wrk(url: str, connections: int, seconds: float, folder: Path, size: int = 0) -> dict[str, Any]:
    script = folder / f"wrk-{size}.lua"
    script.write_text(
        WRK_SCRIPT % {"size": size, "percentiles": ", ".join(str(p) for p in PERCENTILES)}
    )
    out = wrk_output(script, url, int(seconds), connections)
    requests, duration = wrk_requests(out)
    percentiles = [
        (float(p), int(us) / 1000) for p, us in re.findall(r"^P ([\d.]+) (\d+)$", out, re.M)
    ]
    by_pct = dict(percentiles)
    return {
        "rps": requests / duration,
        "p50_ms": by_pct[50.0],
        "p99_ms": by_pct[99.0],
        "percentiles_ms": percentiles,
    }


def _stats(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of each figure; the percentile curve of the median run."""
    by_rps = sorted(samples, key=lambda s: s["rps"])
    return {
        "rps": summarize([s["rps"] for s in samples]),
        "p50_ms": summarize([s["p50_ms"] for s in samples]),
        "p99_ms": summarize([s["p99_ms"] for s in samples]),
        "percentiles_ms": by_rps[len(by_rps) // 2]["percentiles_ms"],
    }


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (make bench installs it from Debian's packages)"}
    for module, name in (("fastapi", "FastAPI"), ("sanic", "Sanic"), ("granian", "granian")):
        if importlib.util.find_spec(module) is None:
            return {"skipped": f"{name} is not installed (pip install -e '.[bench]')"}
    seconds = 1 if quick else 3
    rounds = 1 if quick else 3
    # wrk runs whole seconds: quick mode runs a subset of the points.
    connection_counts = (1, 64) if quick else CONNECTIONS
    payloads = (1_000_000,) if quick else PAYLOADS
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {
        (k, c): [] for k in KINDS for c in connection_counts
    }
    payload_samples: dict[tuple[str, int], list[dict[str, Any]]] = {
        (k, size): [] for k in BODY_KINDS for size in payloads
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        procs = {}
        urls = {}
        try:
            for kind in SERVED:
                port = free_port()
                cmd = command(kind, port, folder / f"state-{kind}")
                procs[kind] = start(cmd, port, folder / f"{kind}.log")
                urls[kind] = f"http://127.0.0.1:{port}"
            urls["invoke_api"] = urls["eventrouter"]
            paths = {kind: "/noop" for kind in KINDS} | {"invoke_api": INVOKE_PATH}
            for kind in KINDS if not quick else ():  # warm up
                wrk(urls[kind] + paths[kind], 64, 1, folder, BODY_BYTES.get(kind, 0))
            for r in range(rounds):  # interleaved, so that noise hits all alike
                for connections in connection_counts:
                    progress(f"HTTP round {r + 1}/{rounds}: {connections} connection(s)")
                    for kind in KINDS:
                        url = urls[kind] + paths[kind]
                        samples[kind, connections].append(
                            wrk(url, connections, seconds, folder, BODY_BYTES.get(kind, 0))
                        )
                for size in payloads:
                    progress(f"HTTP round {r + 1}/{rounds}: {size:,} B bodies")
                    for kind in BODY_KINDS:
                        payload_samples[kind, size].append(
                            wrk(
                                urls[kind] + paths[kind], PAYLOAD_CONNECTIONS, seconds, folder, size
                            )
                        )
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(30)
        report_lines = sum(
            1
            for line in (folder / "eventrouter.log").read_text().splitlines()
            if '"REPORT"' in line
        )
    result: dict[str, Any] = {
        "connections": list(connection_counts),
        "seconds": seconds,
        "eventrouter_report_lines": report_lines,
        "by_connections": {
            str(c): {kind: _stats(samples[kind, c]) for kind in KINDS} for c in connection_counts
        },
        "payload_connections": PAYLOAD_CONNECTIONS,
        "by_payload": {
            str(size): {kind: _stats(payload_samples[kind, size]) for kind in BODY_KINDS}
            for size in payloads
        },
    }
    met = True
    for c in connection_counts:
        row = result["by_connections"][str(c)]
        ours = row["eventrouter"]["rps"]["median"]
        for kind in ("limit", "bare_asgi", "granian", "sanic", "fastapi", "on_uvicorn"):
            row[f"vs_{kind}"] = ours / row[kind]["rps"]["median"]
        row["invoke_api_vs_route"] = row["invoke_api"]["rps"]["median"] / ours
        row["p99_vs_bare"] = (
            row["eventrouter"]["p99_ms"]["median"] / row["bare_asgi"]["p99_ms"]["median"]
        )
        row["met"] = (
            row["vs_bare_asgi"] >= TARGETS["vs_bare"]
            and row["vs_sanic"] >= TARGETS["vs_sanic"]
            and row["vs_granian"] >= TARGETS["vs_granian"]
            and row["vs_limit"] >= TARGETS["vs_limit"]
            and row["p99_vs_bare"] <= 1.0
        )
        row["invoke_met"] = row["invoke_api_vs_route"] >= TARGETS["invoke_vs_route"]
        met = met and row["met"] and row["invoke_met"]
    for size in payloads:
        row = result["by_payload"][str(size)]
        bare = row["bare_asgi"]["rps"]["median"]
        row["route_vs_bare"] = row["eventrouter"]["rps"]["median"] / bare
        row["invoke_api_vs_bare"] = row["invoke_api"]["rps"]["median"] / bare
    if "1000000" in result["by_payload"]:
        big = result["by_payload"]["1000000"]
        big["met"] = big["route_vs_bare"] >= TARGETS["body_vs_bare"]
        met = met and big["met"]
    result["targets"] = TARGETS
    result["met"] = met
    result["cpus"] = os.cpu_count()
    return result
