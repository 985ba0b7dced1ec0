"""HTTP: eventrouter's no-op route (on uvicorn, and on eventrouter's own server) vs a bare
raw-ASGI app vs FastAPI on uvicorn
(httptools, uvloop, no access log), and the same function through the Invoke API, loaded by
wrk from a separate process at 1, 16 and 64 concurrent connections. eventrouter runs as users
run it (``python -m eventrouter run --http``) with logging at its default level: a REPORT
line per request, to a file.

Payload sizes: the Invoke API with JSON payloads of 100 B, 10 KB and 1 MB vs the bare ASGI
app reading and decoding the same body (16 connections).

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
TARGETS = {"vs_bare": 0.8, "vs_fastapi": 1.5}


def start(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    uvicorn_args = [
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--port",
        str(port),
    ]
    if kind in ("eventrouter", "own_server"):
        cmd = [
            sys.executable,
            "-m",
            "eventrouter",
            "run",
            "benchmarks.apps.http_noop:router",
            "--http",
            f"127.0.0.1:{port}",
            "--log-format",
            "json",
            "--state-dir",
            str(log.parent / f"state-{kind}"),
        ]
        if kind == "own_server":  # the same route on eventrouter's own HTTP server
            cmd += ["--server", "eventrouter"]
    elif kind == "bare_asgi":
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.apps.bare_asgi:app", *uvicorn_args]
    else:
        cmd = [sys.executable, "-m", "uvicorn", "benchmarks.apps.fastapi_app:app", *uvicorn_args]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/noop", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start: {log.read_text()[-2000:]}") from None
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
PATHS = {
    "eventrouter": "/noop",
    "own_server": "/noop",
    "invoke_api": INVOKE_PATH,
    "bare_asgi": "/noop",
    "fastapi": "/noop",
}
#: Request bodies: the routes are GETs; an invocation POSTs the smallest payload, {"data":"x"}.
BODY_BYTES = {"eventrouter": 0, "own_server": 0, "invoke_api": 12, "bare_asgi": 0, "fastapi": 0}


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
    if importlib.util.find_spec("fastapi") is None:
        return {"skipped": "FastAPI is not installed (pip install -e '.[bench]')"}
    seconds = 1 if quick else 3
    rounds = 1 if quick else 3
    # wrk runs whole seconds: quick mode runs a subset of the points.
    connection_counts = (1, 64) if quick else CONNECTIONS
    payloads = (1_000_000,) if quick else PAYLOADS
    kinds = ("eventrouter", "own_server", "invoke_api", "bare_asgi", "fastapi")
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {
        (k, c): [] for k in kinds for c in connection_counts
    }
    payload_samples: dict[tuple[str, int], list[dict[str, Any]]] = {
        (k, size): [] for k in ("invoke_api", "bare_asgi") for size in payloads
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        procs = {}
        urls = {}
        try:
            for kind in ("eventrouter", "own_server", "bare_asgi", "fastapi"):
                port = free_port()
                procs[kind] = start(kind, port, folder / f"{kind}.log")
                urls[kind] = f"http://127.0.0.1:{port}"
            urls["invoke_api"] = urls["eventrouter"]
            for kind in kinds if not quick else ():  # warm up
                wrk(urls[kind] + PATHS[kind], 64, 1, folder, BODY_BYTES[kind])
            for r in range(rounds):  # interleaved, so that noise hits all alike
                for connections in connection_counts:
                    progress(f"HTTP round {r + 1}/{rounds}: {connections} connection(s)")
                    for kind in kinds:
                        url = urls[kind] + PATHS[kind]
                        samples[kind, connections].append(
                            wrk(url, connections, seconds, folder, BODY_BYTES[kind])
                        )
                for size in payloads:
                    progress(f"HTTP round {r + 1}/{rounds}: {size:,} B payloads")
                    for kind in ("invoke_api", "bare_asgi"):
                        url = urls[kind] + (INVOKE_PATH if kind == "invoke_api" else "/noop")
                        payload_samples[kind, size].append(
                            wrk(url, PAYLOAD_CONNECTIONS, seconds, folder, size)
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
            str(c): {kind: _stats(samples[kind, c]) for kind in kinds} for c in connection_counts
        },
        "payload_connections": PAYLOAD_CONNECTIONS,
        "by_payload": {
            str(size): {
                kind: _stats(payload_samples[kind, size]) for kind in ("invoke_api", "bare_asgi")
            }
            for size in payloads
        },
    }
    for c in connection_counts:
        row = result["by_connections"][str(c)]
        ours = row["eventrouter"]["rps"]["median"]
        row["vs_bare"] = ours / row["bare_asgi"]["rps"]["median"]
        row["vs_fastapi"] = ours / row["fastapi"]["rps"]["median"]
        row["invoke_api_vs_route"] = row["invoke_api"]["rps"]["median"] / ours
        own = row["own_server"]["rps"]["median"]
        row["own_server_vs_uvicorn"] = own / ours
        row["own_server_vs_bare"] = own / row["bare_asgi"]["rps"]["median"]
    for size in payloads:
        row = result["by_payload"][str(size)]
        row["invoke_api_vs_bare"] = (
            row["invoke_api"]["rps"]["median"] / row["bare_asgi"]["rps"]["median"]
        )
    top = result["by_connections"][str(max(connection_counts))]
    result["vs_bare"] = top["vs_bare"]
    result["vs_fastapi"] = top["vs_fastapi"]
    result["targets"] = TARGETS
    result["met"] = (
        result["vs_bare"] >= TARGETS["vs_bare"] and result["vs_fastapi"] >= TARGETS["vs_fastapi"]
    )
    result["cpus"] = os.cpu_count()
    return result
