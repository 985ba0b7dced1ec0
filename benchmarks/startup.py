"""(s) Start-up: wall time from ``python -m eventrouter run`` to ``GET /readyz`` answering 200.

- the demo (``handlers``: HTTP routes, embedded queues, a schedule, an event bus), goal
  ≤ 0.6 s on a quiet machine;
- a router with one SQS source (on moto), against ``python -c "import aiobotocore.session"``
  in the same run: goal ≤ 0.3 s more than that import (what the source's own library costs
  is not the router's);
- the floor, ``python -c pass``.

The four are interleaved, run after run (machines here are shared and noisy).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

from benchmarks.common import ROOT, progress, summarize
from tests.aws_server import start_moto
from tests.kafka_broker import unique
from tests.services import free_port


def _ready_seconds(target: str, folder: Path, env: dict[str, str]) -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventrouter", "run", target, "--http", f"127.0.0.1:{port}",
         "--state-dir", str(folder / f"state-{port}"), "--log-format", "json"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )  # fmt: skip
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - start
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"{target} did not start") from None
                time.sleep(0.002)
    finally:
        proc.terminate()
        proc.wait(30)


def _command_seconds(*code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *code], check=True, cwd=ROOT)
    return time.perf_counter() - start


def run(quick: bool = False) -> dict[str, Any]:
    runs = 2 if quick else 9
    samples: dict[str, list[float]] = {"demo": [], "sqs": [], "aiobotocore": [], "pass": []}
    with tempfile.TemporaryDirectory() as tmp, start_moto(Path(tmp) / "moto.log") as moto:
        endpoint = moto[0]
        queue = unique("startup")
        boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1").create_queue(
            QueueName=queue
        )
        env = {"STARTUP_QUEUE": queue, "STARTUP_ENDPOINT": endpoint}
        folder = Path(tmp)
        for i in range(runs):
            progress(f"start-up run {i + 1}/{runs}")
            samples["demo"].append(_ready_seconds("handlers", folder, {}))
            samples["sqs"].append(_ready_seconds("benchmarks.apps.startup_sqs:router", folder, env))
            samples["aiobotocore"].append(_command_seconds("-c", "import aiobotocore.session"))
            samples["pass"].append(_command_seconds("-c", "pass"))
    stats = {name: summarize(values) for name, values in samples.items()}
    extra = [s - a for s, a in zip(samples["sqs"], samples["aiobotocore"], strict=True)]
    return {
        **{f"{name}_s": value for name, value in stats.items()},
        "sqs_over_aiobotocore_s": summarize(extra),
        "demo_target_s": 0.6,
        "sqs_extra_target_s": 0.3,
    }
