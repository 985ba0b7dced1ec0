"""Schedules in real time: in-process, and across ``kill -9`` with each ``catch_up`` mode."""

from __future__ import annotations

import itertools
import math
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventrouter import Router, Schedule
from eventrouter.sources.schedule.scheduler import Scheduler
from eventrouter.testing import run_router
from tests.lambda_models import check_event
from tests.processes import RouterProcess

pytestmark = pytest.mark.integration


@pytest.mark.anyio
async def test_rate_one_second_invokes_with_the_scheduled_event() -> None:
    router = Router("t")
    seen: list[dict[str, Any]] = []
    three = anyio.Event()

    # Three fires (start, +1 s, +2 s), then the schedule ends: the last one's outcome is the
    # ledger's last word.
    start = math.ceil(time.time()) + 2

    @router.on_event(Schedule("rate(1 second)", start=start, end=start + 2.5))
    async def tick(event: dict[str, Any]) -> None:
        seen.append(event)
        if len(seen) == 3:
            three.set()

    async with run_router(router) as app:
        started = time.time()
        with anyio.fail_after(10):
            await three.wait()
        await app.drain()
        scheduler = next(iter(app.engine.running.values()))
        assert isinstance(scheduler, Scheduler)
        await scheduler.settle()
        (state,) = await scheduler.ledger.states()
    stamps = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in seen]
    assert stamps == sorted(set(stamps)) and all(b - a == 1 for a, b in itertools.pairwise(stamps))
    assert stamps[0] == start and started < start
    for event in seen:
        check_event("eventbridge", event)
    assert state.last_outcome is not None and state.last_outcome.startswith("Success ")
    assert state.last_due == stamps[-1]


def fires(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            stamp, request_id = line.split()
            out.setdefault(stamp, set()).add(request_id)
    return out


@pytest.mark.parametrize("mode", ["none", "latest", "all"])
def test_kill_9_then_restart_with_each_catch_up_mode(tmp_path: Path, mode: str) -> None:
    state, out = tmp_path / "state", tmp_path / "fires.log"
    env = {"SCHEDULED_OUT": str(out), "SCHEDULED_CATCH_UP": mode}
    target = "tests.apps.scheduled:router"
    first = RouterProcess(state, tmp_path, target=target, env=env)
    try:
        first.wait_for(lambda rs: len(fires(out)) >= 2)
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    before = fires(out)
    time.sleep(3.5)  # the outage: three or four due times pass while nothing runs
    second = RouterProcess(state, tmp_path, target=target, env=env)
    try:
        second.wait_for(
            lambda rs: (
                any(r.get("event") == "schedule missed due times" for r in rs)
                or (mode == "all" and len(fires(out)) >= len(before) + 6)
            )
        )
        count = len(fires(out))
        second.wait_for(lambda rs: len(fires(out)) >= count + 2)
    finally:
        assert second.stop() == 0
    seen = fires(out)
    # Each due time fired once: one request id per scheduled time (a redelivery after the
    # kill keeps its request id; a second fire would not).
    assert all(len(ids) == 1 for ids in seen.values()), seen
    stamps = sorted(int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()) for s in seen)
    gaps = sorted(set(range(stamps[0], stamps[-1] + 1)) - set(stamps))
    missed = [r for r in second.records if r.get("event") == "schedule missed due times"]
    if mode == "all":
        assert gaps == [] and missed == []
    else:
        assert len(missed) == 1 and missed[0]["missed"] >= 3
        assert missed[0]["fired"] == (1 if mode == "latest" else 0)
        assert len(gaps) == missed[0]["missed"] - missed[0]["fired"]
        # the one caught up ("latest") is the newest missed time: the gap is one run
        assert gaps == list(range(gaps[0], gaps[0] + len(gaps)))
    if mode == "latest":
        check_schedules_command(state, max(seen))


def check_schedules_command(state: Path, last_seen: str) -> None:
    """``python -m eventrouter schedules``: the next five times and the last fire, as stored."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventrouter",
            "schedules",
            "tests.apps.scheduled:router",
            "--state-dir",
            str(state),
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("tick  rate(1 second)  timezone=UTC")
    last = next(line for line in lines if line.strip().startswith("last"))
    # The last fire is at least the last one the handler saw (one more may have been queued).
    stamp = datetime.fromisoformat(last_seen.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    assert ("queued" in last or "Success" in last) and " ".join(last.split()[1:3]) >= stamp
    nxt = [" ".join(line.split()[-3:-1]) for line in lines[lines.index(last) + 1 :]]
    assert len(nxt) == 5 and nxt == sorted(nxt)
