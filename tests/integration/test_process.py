"""``python -m eventrouter run`` as a real process: crashes, signals, restarts."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventrouter import Engine
from tests.apps.durable import router as durable_router
from tests.processes import RouterProcess, wait_until
from tests.services import lambda_client

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.apps.durable:router"


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    state, out = tmp_path / "state", tmp_path / "out"
    out.mkdir()
    yield state, out


def processed(out: Path) -> list[int]:
    path = out / "processed.log"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def queued(state: Path) -> int:
    with sqlite3.connect(state / "queue.db") as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


async def enqueue(
    state: Path, function: str, payloads: list[Any], concurrency: int = 50
) -> list[str]:
    """Enqueue from this process, as a second producer would; returns the acknowledged ids."""
    acknowledged: list[str] = []
    async with Engine(durable_router, state_dir=state, consume=False) as producer:
        pending = iter(payloads)

        async def worker() -> None:
            for payload in pending:
                acknowledged.append(await producer.invoke_async(function, payload))

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
    return acknowledged


def test_sigkill_mid_stream_loses_no_acknowledged_event(dirs: tuple[Path, Path]) -> None:
    state, out = dirs
    total = 1500
    first = RouterProcess(state, out)
    first.wait_for(lambda rs: any(r.get("event") == "router started" for r in rs))
    acknowledged = anyio.run(enqueue, state, "record", [{"n": n} for n in range(total)])
    assert len(acknowledged) == total
    first.wait_for(lambda rs: first.successes("record") >= 300)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    done_before_kill = set(processed(out))
    assert 300 <= len(done_before_kill) < total, "the kill must land mid-stream"

    second = RouterProcess(state, out)
    wait_until(lambda: set(processed(out)) >= set(range(total)))
    assert second.stop() == 0
    assert queued(state) == 0
    counts = processed(out)
    assert set(counts) == set(range(total))
    # At least once: a few events in flight at the kill may have run twice, never more.
    assert len(counts) - total <= 20 + 1


def test_sigterm_lets_in_flight_work_finish(dirs: tuple[Path, Path]) -> None:
    state, out = dirs
    anyio.run(enqueue, state, "slow", [{"n": 1, "seconds": 1.0}])
    proc = RouterProcess(state, out)
    wait_until(lambda: (out / "started.log").exists())
    started = time.monotonic()
    assert proc.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started >= 0.5  # it waited for the handler
    assert processed(out) == [1]
    assert queued(state) == 0
    assert any(r.get("event") == "stopping" and r.get("signal") == "SIGTERM" for r in proc.records)


def test_grace_period_ends_and_the_event_is_kept(dirs: tuple[Path, Path]) -> None:
    state, out = dirs
    anyio.run(enqueue, state, "slow", [{"n": 7, "seconds": 60}])
    proc = RouterProcess(state, out, "--grace", "0.2")
    wait_until(lambda: (out / "started.log").exists())
    assert proc.stop(signal.SIGINT, timeout=20) == 0
    assert processed(out) == []
    assert queued(state) == 1  # not acknowledged as done: it runs again after a restart
    again = RouterProcess(state, out, "--grace", "0.2")
    wait_until(lambda: (out / "started.log").read_text().split() == ["7", "7"])
    assert again.stop() == 0


def test_two_routers_consume_one_state_dir_each_event_once(dirs: tuple[Path, Path]) -> None:
    """Two ``run`` processes on one state dir (the embedded queue's leases): every event is
    processed, none twice."""
    state, out = dirs
    first, second = RouterProcess(state, out), RouterProcess(state, out)
    for router in (first, second):
        router.wait_for(lambda rs: any(r.get("event") == "router started" for r in rs))
    total = 400
    anyio.run(enqueue, state, "record", [{"n": n} for n in range(total)])
    processed = out / "processed.log"
    wait_until(lambda: processed.exists() and len(processed.read_text().split()) >= total)
    numbers = [int(n) for n in processed.read_text().split()]
    assert sorted(numbers) == list(range(total))
    assert first.successes("record") > 0 and second.successes("record") > 0
    assert first.stop() == 0 and second.stop() == 0


def test_events_enqueued_by_the_cli_reach_the_running_router(dirs: tuple[Path, Path]) -> None:
    state, out = dirs
    proc = RouterProcess(state, out)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventrouter",
            "invoke",
            "record",
            TARGET,
            "--async",
            "--payload",
            '{"n": 42}',
            "--state-dir",
            str(state),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    proc.wait_for(
        lambda rs: any(r.get("event") == "REPORT" and r.get("request_id") == request_id for r in rs)
    )
    assert proc.stop() == 0
    assert processed(out) == [42]


def test_event_acknowledged_over_http_survives_sigkill(dirs: tuple[Path, Path]) -> None:

    state, out = dirs
    total = 10
    first = RouterProcess(state, out, "--http", "127.0.0.1:0")
    first.wait_for(lambda rs: any(r.get("event") == "http listening" for r in rs))
    url = next(r["url"] for r in first.records if r.get("event") == "http listening")
    lam = lambda_client(url)
    for n in range(total):
        r = lam.invoke(
            FunctionName="paced",
            InvocationType="Event",
            Payload=json.dumps({"n": n, "seconds": 0.1}),
        )
        assert r["StatusCode"] == 202
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert len(processed(out)) < total, "the kill must land before the events are done"

    second = RouterProcess(state, out, "--http", "127.0.0.1:0")
    wait_until(lambda: set(processed(out)) == set(range(total)))
    assert second.stop() == 0
    assert queued(state) == 0


def test_sigterm_lets_http_requests_in_flight_finish(dirs: tuple[Path, Path]) -> None:
    import httpx

    state, out = dirs
    proc = RouterProcess(state, out, "--http", "127.0.0.1:0")
    proc.wait_for(lambda rs: any(r.get("event") == "http listening" for r in rs))
    url = next(r["url"] for r in proc.records if r.get("event") == "http listening")
    with httpx.Client(base_url=url, timeout=30) as client:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.get, "/sleep/3")
            wait_until(lambda: (out / "started.log").exists())
            proc.proc.send_signal(signal.SIGTERM)
            response = pending.result(30)
    assert response.status_code == 200 and response.json() == "slept 3"
    assert proc.proc.wait(30) == 0
