"""Child processes the tests and benchmarks start on loopback: a free port, wait until up."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    """Return once ``proc`` accepts connections on ``port``; raise with its log if it dies."""
    deadline = time.monotonic() + 30
    while True:  # another process: nothing to await but its port
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)
