"""``python -m eventrouter run --metrics HOST:PORT``: a router without routes still shows its
metrics and dashboard, on a port of their own; and ``usage`` reads what the run recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import wait_until
from tests.services import free_port, wait_for_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
APP = """
from eventrouter import Router

router = Router("headless")


@router.on_event(None, name="tick")
async def tick(event: dict) -> dict:
    return event
"""


def test_metrics_port_of_a_router_without_routes(tmp_path: Path) -> None:
    (tmp_path / "headless.py").write_text(APP)
    port, state = free_port(), tmp_path / "state"
    log = tmp_path / "router.log"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "eventrouter", "run", "headless:router", "--no-http",
             "--metrics", f"127.0.0.1:{port}", "--state-dir", str(state), "--grace", "1"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, proc, "the router's metrics port", log)
        invoked = subprocess.run(
            [sys.executable, "-m", "eventrouter", "invoke", "tick", "headless:router",
             "--async", "--state-dir", str(state), "--payload", '{"n": 1}'],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert invoked.returncode == 0, invoked.stderr
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def scrape() -> dict[tuple[str, str | None], float]:
                return {
                    (s.name, s.labels.get("FunctionName")): s.value
                    for family in text_string_to_metric_families(client.get("/metrics").text)
                    for s in family.samples
                }

            # Another process took the event from the shared queue: only a scrape shows it.
            wait_until(lambda: scrape().get(("lambda_Invocations_total", "tick")) == 1, 30)
            values = scrape()
            assert values[("lambda_AsyncEventsReceived_total", "tick")] == 1
            assert client.get("/dashboard").status_code == 200
            assert client.get("/2015-03-31/functions/tick/invocations").status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()
    usage = subprocess.run(
        [sys.executable, "-m", "eventrouter", "usage", "--state-dir", str(state), "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert usage.returncode == 0, usage.stderr
    assert '"function":"tick","requests":1' in usage.stdout
