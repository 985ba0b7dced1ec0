"""moto's server on loopback, for the tests and the benchmarks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.services import free_port, wait_for_port


@contextmanager
def start_moto(log: Path, port: int | None = None) -> Iterator[tuple[str, Any, Any]]:
    """A moto server on loopback: ``(endpoint, stop, restart)``; dummy credentials are set."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
    if port is None:
        port = free_port()
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert binary, "moto_server is not installed (pip install 'moto[server]'; make test does)"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
            )
        procs.append(proc)
        wait_for_port(port, proc, "moto", log)

    def stop() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)

    start()
    try:
        yield f"http://127.0.0.1:{port}", stop, start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
