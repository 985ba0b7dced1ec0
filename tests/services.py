"""Child processes the tests and benchmarks start on loopback: a free port, wait until up."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def aws_client(service: str, url: str, key: str = "test", secret: str = "test") -> Any:
    """A boto3 client of ``service`` pointed at a router, without retries (a test sees each
    answer)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


def lambda_client(url: str, key: str = "test", secret: str = "test") -> Any:
    """boto3's Lambda client pointed at a router."""
    return aws_client("lambda", url, key, secret)


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
