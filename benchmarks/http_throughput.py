"""HTTP: eventrouter's no-op route vs a bare raw-ASGI app vs FastAPI, all on uvicorn
(httptools, uvloop, no access log), loaded by wrk from a separate process at the same
concurrency. eventrouter runs as users run it (``python -m eventrouter run --http``) with
logging at its default level: a REPORT line per request, to a file.
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

from benchmarks.common import summarize
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
    if kind == "eventrouter":
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
            str(log.parent / "state"),
        ]
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


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(port: int, connections: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            f"http://127.0.0.1:{port}/noop",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        latency[f"p{pct}_ms"] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses:\n{out}")
    return {"rps": rps, **latency}


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed (make bench installs it from Debian's packages)"}
    if importlib.util.find_spec("fastapi") is None:
        return {"skipped": "FastAPI is not installed (pip install -e '.[bench]')"}
    connections = 64
    seconds = 1 if quick else 5
    rounds = 1 if quick else 3
    kinds = ("eventrouter", "bare_asgi", "fastapi")
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        ports = {}
        try:
            for kind in kinds:
                ports[kind] = free_port()
                procs[kind] = start(kind, ports[kind], Path(tmp) / f"{kind}.log")
            for kind in kinds:  # warm up
                wrk(ports[kind], connections, 1)
            for _ in range(rounds):  # interleaved, so that noise hits all three alike
                for kind in kinds:
                    samples[kind].append(wrk(ports[kind], connections, seconds))
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(30)
        report_lines = sum(
            1
            for line in (Path(tmp) / "eventrouter.log").read_text().splitlines()
            if '"REPORT"' in line
        )
    result: dict[str, Any] = {
        "connections": connections,
        "seconds": seconds,
        "eventrouter_report_lines": report_lines,
    }
    for kind in kinds:
        result[kind] = {
            "rps": summarize([s["rps"] for s in samples[kind]]),
            "p50_ms": summarize([s["p50_ms"] for s in samples[kind]]),
            "p99_ms": summarize([s["p99_ms"] for s in samples[kind]]),
        }
    ours = result["eventrouter"]["rps"]["median"]
    result["vs_bare"] = ours / result["bare_asgi"]["rps"]["median"]
    result["vs_fastapi"] = ours / result["fastapi"]["rps"]["median"]
    result["targets"] = TARGETS
    result["met"] = (
        result["vs_bare"] >= TARGETS["vs_bare"] and result["vs_fastapi"] >= TARGETS["vs_fastapi"]
    )
    result["cpus"] = os.cpu_count()
    return result
