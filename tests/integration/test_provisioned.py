"""Provisioned concurrency: environments started and initialised before the router is ready,
kept warm past their idle timeout, taken before on-demand ones; spillover counted; set at run
time through the control plane."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventrouter import Router
from eventrouter.runtime.environments.pool import Pool
from eventrouter.testing import run_router
from tests.services import lambda_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def pid(event: Any) -> int:
    """Runs in a process environment."""
    return os.getpid()


def pool_of(app: Any, name: str) -> Pool:
    pool = app.engine.invoker.states[name].pool
    assert pool is not None
    return pool


async def test_provisioned_environments_are_warm_before_the_first_invocation(
    tmp_path: Path,
) -> None:
    router = Router("provisioned")
    router.on_event(None, isolation="process", provisioned_concurrency=2, idle_timeout=0.2)(pid)
    async with run_router(router, state_dir=tmp_path) as app:
        pool = pool_of(app, "pid")
        warm = set(pool.pids)
        assert len(warm) == 2 and pool.provisioned_ready == 2  # before any invocation
        first = await app.engine.invoke("pid", {})
        assert first in warm
        assert sum(app.engine.metrics.function("pid").init.counts) == 0  # no cold start

        # Three at once: two on the provisioned environments, one spills over.
        pids: list[int] = []

        async def one() -> None:
            pids.append(await app.engine.invoke("pid", {}))

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)
        assert len(set(pids)) == 3 and len(set(pids) & warm) == 2
        spilled = app.engine.metrics.get("ProvisionedConcurrencySpilloverInvocations", "pid")
        assert spilled == 1
        assert sum(app.engine.metrics.function("pid").init.counts) == 1  # the spillover's

        # The on-demand environment shuts down after idle_timeout; the provisioned stay.
        with anyio.fail_after(20):
            await pool.wait_for(lambda p: len(p.environments) == 2)
        assert set(pool.pids) == warm


def init_router(inits: list[int]) -> Router:
    router = Router("inline")

    def setup() -> None:
        inits.append(1)

    @router.on_event(None, init=setup, provisioned_concurrency=1)
    async def ready(event: Any) -> str:
        return "ok"

    return router


async def test_an_inline_function_is_initialised_at_start(tmp_path: Path) -> None:
    inits: list[int] = []
    async with run_router(init_router(inits), state_dir=tmp_path) as app:
        assert inits == [1]  # before any invocation
        assert await app.engine.invoke("ready", {}) == "ok"
        assert sum(app.engine.metrics.function("ready").init.counts) == 0


async def test_provisioned_concurrency_config_through_the_control_plane(tmp_path: Path) -> None:
    def build() -> Router:
        router = Router("configured")
        router.on_event(None, isolation="process")(pid)
        return router

    state = tmp_path / "state"
    async with run_router(build(), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"
        pool = pool_of(app, "pid")
        assert pool.pids == []

        def put() -> tuple[str, dict[str, Any]]:
            client = lambda_client(url)
            try:
                client.get_provisioned_concurrency_config(FunctionName="pid", Qualifier="$LATEST")
            except client.exceptions.ProvisionedConcurrencyConfigNotFoundException as exc:
                missing = str(exc.response["Error"]["Code"])
            answer = client.put_provisioned_concurrency_config(
                FunctionName="pid", Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
            )
            return missing, answer

        missing, answer = await anyio.to_thread.run_sync(put)
        assert missing == "ProvisionedConcurrencyConfigNotFoundException"
        assert answer["RequestedProvisionedConcurrentExecutions"] == 1
        with anyio.fail_after(20):
            await pool.wait_for(lambda p: p.provisioned_ready == 1)

        def get() -> dict[str, Any]:
            return lambda_client(url).get_provisioned_concurrency_config(
                FunctionName="pid", Qualifier="$LATEST"
            )

        ready = await anyio.to_thread.run_sync(get)
        assert (ready["Status"], ready["AvailableProvisionedConcurrentExecutions"]) == ("READY", 1)

    # Kept: the next start provisions it before it is ready.
    async with run_router(build(), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"
        pool = pool_of(app, "pid")
        assert pool.provisioned_ready == 1

        def delete() -> str:
            client = lambda_client(url)
            client.delete_provisioned_concurrency_config(FunctionName="pid", Qualifier="$LATEST")
            try:
                client.get_provisioned_concurrency_config(FunctionName="pid", Qualifier="$LATEST")
            except client.exceptions.ProvisionedConcurrencyConfigNotFoundException as exc:
                return str(exc.response["Error"]["Code"])
            return "still there"

        assert await anyio.to_thread.run_sync(delete) == (
            "ProvisionedConcurrencyConfigNotFoundException"
        )
        assert pool.provisioned_ready == 0  # an on-demand environment now, idle until it expires
