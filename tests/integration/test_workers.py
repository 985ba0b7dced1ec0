"""``python -m eventrouter run --workers N`` and ``--reload``, as real processes: HTTP served by
every worker on one port, the embedded queue consumed by all of them (each event once; at
least once when a worker is killed), a dead worker replaced, a rolling restart under load
that fails no request, reloads on a change and not on a syntax error."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.processes import RouterProcess, wait_until
from tests.services import free_port

pytestmark = pytest.mark.integration


def start(tmp_path: Path, *extra: str, workers: int = 2) -> tuple[RouterProcess, str]:
    port = free_port()
    router = RouterProcess(
        tmp_path / "state",
        tmp_path,
        "--workers",
        str(workers),
        "--http",
        f"127.0.0.1:{port}",
        *extra,
        target="tests.apps.workers:router",
        env={"WORKERS_OUT": str(tmp_path)},
    )
    router.wait_for(lambda rs: any(r.get("event") == "workers started" for r in rs))
    return router, f"http://127.0.0.1:{port}"


def ready_pids(router: RouterProcess) -> list[int]:
    return [r["pid"] for r in router.records if r.get("event") == "worker ready"]


def who(url: str, times: int) -> Counter[int]:
    """Which process answered each of ``times`` requests, each on a new connection."""
    seen: Counter[int] = Counter()
    with httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for _ in range(times):
            seen[client.get("/who").json()["pid"]] += 1
    return seen


def send_events(url: str, numbers: range, sleep: float = 0.0, function: str = "record") -> None:
    """Queue one asynchronous invocation of ``function`` per number (Invoke API, ``Event``)."""

    async def main() -> None:
        limit = anyio.Semaphore(32)
        async with httpx.AsyncClient(base_url=url) as client, anyio.create_task_group() as tg:

            async def one(n: int) -> None:
                async with limit:
                    response = await client.post(
                        f"/2015-03-31/functions/{function}/invocations",
                        json={"n": n, "sleep": sleep},
                        headers={"x-amz-invocation-type": "Event"},
                    )
                    assert response.status_code == 202, response.text

            for n in numbers:
                tg.start_soon(one, n)

    anyio.run(main)


def done(folder: Path) -> Counter[int]:
    """How many times each number was processed, over every worker's file."""
    counts: Counter[int] = Counter()
    for path in folder.glob("done-*.log"):
        counts.update(int(line) for line in path.read_text().split())
    return counts


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_share_the_port_and_the_queue(tmp_path: Path, workers: int) -> None:
    router, url = start(tmp_path, workers=workers)
    try:
        pids = set(ready_pids(router))
        assert len(pids) == workers
        # Every worker accepts on the one socket.
        assert set(who(url, 60 * workers)) == pids
        total = 10_000 if workers == 2 else 4_000
        send_events(url, range(total))
        wait_until(lambda: sum(done(tmp_path).values()) >= total, within=120)
        counts = done(tmp_path)
        assert set(counts) == set(range(total))
        assert max(counts.values()) == 1  # exactly once, across workers
    finally:
        assert router.stop() == 0
    assert sum(1 for r in router.records if r.get("event") == "router stopped") == workers


def test_a_reservation_holds_across_workers(tmp_path: Path) -> None:
    """``reserved_concurrency=3`` over 4 workers: never more than 3 at once, router-wide."""
    router, url = start(tmp_path, workers=4)
    try:
        total = 60
        send_events(url, range(total), sleep=0.05, function="limited")

        def spans() -> list[tuple[float, float]]:
            out = []
            for path in tmp_path.glob("spans-*.log"):
                for line in path.read_text().splitlines():
                    start, end = line.split()
                    out.append((float(start), float(end)))
            return out

        wait_until(lambda: len(spans()) >= total, within=120)
        moments = sorted([(s, 1) for s, _ in spans()] + [(e, -1) for _, e in spans()])
        running = most = 0
        for _, step in moments:  # an end before a start at the same instant
            running += step
            most = max(most, running)
        workers_used = len(list(tmp_path.glob("spans-*.log")))
    finally:
        assert router.stop() == 0
    assert most <= 3
    assert most >= 2 and workers_used >= 2  # it did run concurrently, in several workers


def test_a_killed_worker_is_replaced_and_its_events_still_run(tmp_path: Path) -> None:
    router, url = start(tmp_path)
    try:
        first, second = ready_pids(router)
        total = 600
        send_events(url, range(total), sleep=0.01)
        wait_until(lambda: len(done(tmp_path)) > total // 4)
        os.kill(first, signal.SIGKILL)  # mid-stream, with events leased
        router.wait_for(lambda rs: any(r.get("event") == "worker died" for r in rs))
        router.wait_for(lambda rs: len([r for r in rs if r.get("event") == "worker ready"]) == 3)
        wait_until(lambda: set(done(tmp_path)) == set(range(total)), within=120)
        replacement = ready_pids(router)[-1]
        assert replacement not in (first, second)
        assert set(who(url, 40)) == {second, replacement}
    finally:
        assert router.stop() == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_rolling_restart_fails_no_request(tmp_path: Path, workers: int) -> None:
    """SIGHUP replaces the workers one by one (--workers 1 too: a supervisor all the same)."""
    router, url = start(tmp_path, workers=workers)
    answered: list[int] = []
    failures: list[Any] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                try:
                    response = client.get("/who", headers={"connection": "close"})
                    if response.status_code != 200:
                        failures.append(response.status_code)
                    else:
                        answered.append(response.json()["pid"])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    before = set(ready_pids(router))
    loader = threading.Thread(target=load)
    loader.start()
    try:
        wait_until(lambda: len(answered) > 50)
        router.proc.send_signal(signal.SIGHUP)
        router.wait_for(lambda rs: any(r.get("event") == "rolling restart done" for r in rs))
        count = len(answered)
        wait_until(lambda: len(answered) > count + 50)
    finally:
        stop.set()
        loader.join(30)
        code = router.stop()
    after = set(ready_pids(router)) - before
    assert failures == []
    assert len(after) == workers and after <= set(answered)  # the new workers served
    assert code == 0


APP = """
from eventrouter import Http, Router

router = Router("reloaded")
VERSION = {version}


@router.on_event(Http("GET /version"))
async def version(event) -> dict:
    return {{"version": VERSION}}
"""


def test_reload_on_a_change_and_not_on_a_syntax_error(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = code / "reloadme.py"
    module.write_text(APP.format(version=1))
    port = free_port()
    router = RouterProcess(
        tmp_path / "state",
        tmp_path,
        "--reload",
        "--reload-dir",
        str(code),
        "--http",
        f"127.0.0.1:{port}",
        target="reloadme:router",
        env={"PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])},
    )
    url = f"http://127.0.0.1:{port}/version"

    def version() -> int:
        return int(httpx.get(url, timeout=10).json()["version"])

    try:
        router.wait_for(lambda rs: any(r.get("event") == "workers started" for r in rs))
        assert version() == 1
        module.write_text(APP.format(version=2))
        wait_until(lambda: version() == 2)
        module.write_text("this is not Python (")
        router.wait_for(lambda rs: any(r.get("event", "").startswith("restart failed") for r in rs))
        assert version() == 2  # the old worker serves on
        module.write_text(APP.format(version=3))
        wait_until(lambda: version() == 3)
    finally:
        assert router.stop() == 0


def test_a_crash_loop_stops_the_router(tmp_path: Path) -> None:
    """Workers that keep dying right after they start: restarted with backoff, then, five
    deaths within a minute, the router stops with exit 1."""
    router = RouterProcess(
        tmp_path / "state", tmp_path, "--workers", "2", target="tests.apps.dying:router"
    )
    code = router.proc.wait(90)
    router._reader.join(5)
    events = [r.get("event") for r in router.records]
    assert code == 1
    assert "worker crash loop: stopping" in events or "worker did not start" in events


def test_control_plane_changes_reach_every_worker(tmp_path: Path) -> None:
    """A change made through one worker is kept in control.json; the others apply it."""
    from botocore.exceptions import ClientError

    from tests.services import lambda_client

    router, url = start(tmp_path, workers=2)
    try:
        lambda_client(url).update_function_configuration(FunctionName="record", Timeout=7)
        router.wait_for(
            lambda rs: any(
                r.get("event") == "control-plane changes of another worker applied" for r in rs
            )
        )
        # Each on a new connection (a new client): both workers answer some of them.
        timeouts = {
            lambda_client(url).get_function_configuration(FunctionName="record")["Timeout"]
            for _ in range(20)
        }
        assert timeouts == {7}
        try:
            lambda_client(url).put_function_concurrency(
                FunctionName="record", ReservedConcurrentExecutions=1
            )
        except ClientError as exc:
            refused = exc.response["Error"]["Code"]
        assert refused == "ResourceConflictException"  # slots are shared in files sized at start
    finally:
        assert router.stop() == 0


def _running_with(needle: str) -> list[int]:
    """Processes whose command line names ``needle`` (the test's own state dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if needle.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def test_stopping_while_a_worker_is_replaced_leaves_no_process(tmp_path: Path) -> None:
    """A worker started again after a death and the supervisor stopped meanwhile: the new
    worker is stopped too (it was left running, an orphan, when its start was under way)."""
    router, _ = start(tmp_path)
    first, _second = ready_pids(router)
    os.kill(first, signal.SIGKILL)
    state = str(tmp_path / "state")
    router.wait_for(lambda rs: any(r.get("event") == "worker died" for r in rs))
    # The replacement exists (the supervisor, the survivor and it), not yet ready.
    wait_until(lambda: len(_running_with(state)) >= 3 or len(ready_pids(router)) > 2)
    assert router.stop() == 0
    wait_until(lambda: not _running_with(state), within=30)
