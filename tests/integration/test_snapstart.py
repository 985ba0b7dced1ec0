"""SnapStart: environments forked from a template that imported and initialised the function
once. The runtime hooks run where Lambda runs them; limits hold for forked environments;
an init that leaves sockets or threads behind is refused."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventrouter import FunctionError, FunctionTimeout, Router
from eventrouter.testing import run_router
from tests.apps import snap
from tests.services import lambda_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def snap_router(**settings: Any) -> Router:
    router = Router("snap")
    router.on_event(None, isolation="process", snapstart=True, **settings)(snap.ident)
    return router


async def test_restored_environments_share_init_and_run_their_hooks(tmp_path: Path) -> None:
    async with run_router(snap_router(), state_dir=tmp_path) as app:
        pool = app.engine.invoker.states["ident"].pool
        assert pool is not None and pool.template is not None  # snapshotted at start
        template_pid = pool.template.pid
        results: list[dict[str, Any]] = []

        async def one() -> None:
            results.append(await app.engine.invoke("ident", {}))

        async with anyio.create_task_group() as tg:
            for _ in range(4):  # four at once: four restored environments
                tg.start_soon(one)
    pids = {r["pid"] for r in results}
    assert len(pids) == 4 and template_pid not in pids
    # One import, in the template: what init made is the same everywhere...
    assert {r["at_import"] for r in results} == {results[0]["at_import"]}
    # ... and what an after_restore hook makes again is not.
    assert len({r["token"] for r in results}) == 4
    assert len({r["random"] for r in results}) == 4  # Python re-seeds random in a fork
    for r in results:
        assert r["hooks"] == [
            f"before_snapshot in {template_pid}",
            f"after_restore in {r['pid']}",
        ]


async def test_report_shows_a_restore_not_an_init(tmp_path: Path) -> None:
    async with run_router(snap_router(), state_dir=tmp_path, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def invoke() -> str:
            configuration = lambda_client(url).get_function_configuration(FunctionName="ident")
            assert configuration["SnapStart"] == {
                "ApplyOn": "PublishedVersions",
                "OptimizationStatus": "On",
            }
            answer = lambda_client(url).invoke(FunctionName="ident", LogType="Tail")
            return base64.b64decode(answer["LogResult"]).decode()

        tail = await anyio.to_thread.run_sync(invoke)
        warm = await anyio.to_thread.run_sync(invoke)
    (report,) = [line for line in tail.splitlines() if line.startswith("REPORT")]
    assert "Restore Duration: " in report and "Billed Restore Duration: " in report
    assert "Init Duration" not in report
    (warm_report,) = [line for line in warm.splitlines() if line.startswith("REPORT")]
    assert "Restore Duration" not in warm_report  # a warm invocation restores nothing


async def test_timeouts_and_memory_limits_hold_for_restored_environments(tmp_path: Path) -> None:
    router = Router("limits")
    router.on_event(None, isolation="process", snapstart=True, timeout=1)(snap.sleepy)
    router.on_event(None, isolation="process", snapstart=True, memory_mb=128)(snap.hungry)
    async with run_router(router, state_dir=tmp_path) as app:
        sleepy = app.engine.invoker.states["sleepy"].pool
        assert sleepy is not None
        with pytest.raises(FunctionTimeout):
            await app.engine.invoke("sleepy", {"seconds": 30})
        with anyio.fail_after(10):  # the timed-out environment was killed
            await sleepy.wait_for(lambda p: not p.environments)
        assert await app.engine.invoke("hungry", {"mb": 8}) == 8 * 1024 * 1024
        with pytest.raises(FunctionError) as caught:
            await app.engine.invoke("hungry", {"mb": 400})
    assert caught.value.body["errorType"] == "Runtime.OutOfMemory"


@pytest.mark.parametrize(
    ("init", "words"),
    [(snap.open_socket, "socket"), (snap.start_thread, "threads running (poller)")],
)
async def test_an_init_that_leaves_connections_or_threads_is_refused(
    tmp_path: Path, init: Any, words: str
) -> None:
    router = Router("refused")
    router.on_event(None, isolation="process", snapstart=True, init=init)(snap.ident)
    async with run_router(router, state_dir=tmp_path) as app:
        with pytest.raises(FunctionError) as caught:
            await app.engine.invoke("ident", {})
    error = caught.value.body
    assert error["errorType"] == "SnapStartException"
    assert words in error["errorMessage"] and "after_restore" in error["errorMessage"]


def test_snapstart_needs_process_isolation() -> None:
    from eventrouter import ConfigError

    with pytest.raises(ConfigError, match="isolation='process'"):
        Router("x").on_event(None, snapstart=True)(snap.ident)
