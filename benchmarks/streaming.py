"""Streamed responses: a route yielding 10 MB in 1 MB pieces on eventrouter's own server
(Lambda's bandwidth cap lifted) against a bare ASGI app on uvicorn sending the same pieces.

A raw-socket client asks for the stream (``Connection: close``) and reads it to the end: time
to the first byte of the response and megabytes a second over the whole body. Rounds
alternate between the two servers.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import progress, summarize
from benchmarks.http_throughput import UVICORN, start
from tests.services import free_port

MEGABYTES = 10
REQUEST = b"GET /stream HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n"


def fetch(port: int) -> tuple[float, float, int]:
    """Time to first byte (s), whole time (s) and bytes received, for one stream."""
    buffer = bytearray(4 * 1024 * 1024)
    view = memoryview(buffer)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        began = time.perf_counter()
        sock.sendall(REQUEST)
        first = None
        received = 0
        while True:
            n = sock.recv_into(view)
            if not n:
                break
            if first is None:
                first = time.perf_counter()
            received += n
        ended = time.perf_counter()
    assert first is not None
    return first - began, ended - began, received


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 2 if quick else 7
    kinds = {
        "eventrouter": [sys.executable, "-m", "eventrouter", "run",
                        "benchmarks.apps.http_stream:router", "--log-format", "json"],
        "bare_asgi": [sys.executable, "-m", "uvicorn", "benchmarks.apps.bare_asgi:app", *UVICORN],
    }  # fmt: skip
    samples: dict[str, list[tuple[float, float, int]]] = {kind: [] for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        procs, ports = {}, {}
        try:
            for kind, cmd in kinds.items():
                port = ports[kind] = free_port()
                where = (
                    ["--http", f"127.0.0.1:{port}", "--state-dir", str(folder / "state")]
                    if kind == "eventrouter"
                    else ["--port", str(port)]
                )
                procs[kind] = start(cmd + where, port, folder / f"{kind}.log", "/stream")
            for kind in kinds:
                fetch(ports[kind])  # warm up
            for r in range(rounds):
                progress(f"streaming round {r + 1}/{rounds}")
                for kind in kinds:
                    samples[kind].append(fetch(ports[kind]))
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(30)
    result: dict[str, Any] = {"megabytes": MEGABYTES, "rounds": rounds}
    for kind, runs in samples.items():
        sizes = {received for _, _, received in runs}
        if min(sizes) < MEGABYTES * 1024 * 1024:
            raise RuntimeError(f"{kind} sent {sorted(sizes)} bytes, not {MEGABYTES} MB")
        result[kind] = {
            "ttfb_ms": summarize([first * 1000 for first, _, _ in runs]),
            "mb_per_s": summarize([MEGABYTES / whole for _, whole, _ in runs]),
        }
    result["throughput_vs_bare"] = (
        result["eventrouter"]["mb_per_s"]["median"] / result["bare_asgi"]["mb_per_s"]["median"]
    )
    return result
