"""Recursive loop detection: a chain of invocations through the durable queue, destinations,
``ctx.invoke`` and process environments is stopped past 16 deep, unless allowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eventrouter import Context, Queue, RecursiveInvocation, Router, to_function, to_queue
from eventrouter.lineage import DEPTH, LIMIT
from eventrouter.testing import run_router

pytestmark = pytest.mark.anyio


def looping_router(seen: list[int], **settings: Any) -> Router:
    router = Router("loops")

    @router.on_event(Queue("loop"), on_failure=to_function("stopped"), **settings)
    async def echo(event: dict[str, int], ctx: Context) -> None:
        seen.append(event["n"])
        if event["n"] < 40:  # a bounded loop, so that "Allow" ends too
            await ctx.send(to_queue("loop"), {"n": event["n"] + 1})

    @router.on_event(None)
    async def stopped(record: Any) -> None:
        return None

    @router.on_event(None)
    async def start(event: Any, ctx: Context) -> None:
        await ctx.send(to_queue("loop"), {"n": 1})

    return router


async def test_a_function_sending_to_its_own_queue_is_stopped(tmp_path: Path) -> None:
    seen: list[int] = []
    async with run_router(looping_router(seen), state_dir=tmp_path) as app:
        await app.engine.invoke("start", {})
        record = await app.next_record("echo", "on_failure")
        await app.drain()
        dropped = app.engine.metrics.get("RecursiveInvocationsDropped", "echo")
    # start is depth 1; echo runs at depths 2..16, the 16th message is stopped.
    assert seen == list(range(1, LIMIT))
    assert record["requestContext"]["condition"] == "RecursiveInvocationDetected"
    assert record["requestPayload"] == {"n": LIMIT}
    assert record["responsePayload"]["errorType"] == "RecursiveInvocationException"
    assert dropped == 1


async def test_recursive_loop_allow_lets_it_run(tmp_path: Path) -> None:
    seen: list[int] = []
    async with run_router(looping_router(seen, recursive_loop="Allow"), state_dir=tmp_path) as app:
        await app.engine.invoke("start", {})
        await app.drain()  # each message is sent before the last is done: drains at 40
        dropped = app.engine.metrics.get("RecursiveInvocationsDropped", "echo")
    assert seen == list(range(1, 41)) and dropped == 0


async def test_destinations_carry_the_depth(tmp_path: Path) -> None:
    """on_success chains count too: each record's invocation is one deeper."""
    router = Router("chain")
    runs: list[int] = []

    @router.on_event(None, on_success=to_function("again"))
    async def again(event: Any) -> int:
        runs.append(1)
        return len(runs)

    async with run_router(router, state_dir=tmp_path) as app:
        await app.engine.invoke_async("again", {})
        records = await app.wait_records(LIMIT, "again", "on_success")
        await app.drain()
        dropped = app.engine.metrics.get("RecursiveInvocationsDropped", "again")
        delivered = len(app.records("again", "on_success"))
    assert len(runs) == LIMIT and dropped == 1
    assert records[-1]["responsePayload"] == LIMIT and delivered == LIMIT


async def test_synchronous_self_invocation_raises_past_the_limit(tmp_path: Path) -> None:
    router = Router("sync")

    @router.on_event(None)
    async def dig(event: dict[str, int], ctx: Context) -> dict[str, Any]:
        try:
            return await ctx.invoke("dig", {"n": event["n"] + 1})
        except RecursiveInvocation as exc:
            return {"deepest": event["n"], "error": str(exc)}

    async with run_router(router, state_dir=tmp_path) as app:
        result = await app.engine.invoke("dig", {"n": 1})
    assert result["deepest"] == LIMIT
    assert "recursive loop" in result["error"]


async def calls_probe(event: Any, ctx: Context) -> Any:
    """Runs in a process environment: its ctx.invoke is served by the router."""
    return await ctx.invoke("probe", {})


async def test_calls_from_process_environments_are_one_deeper(tmp_path: Path) -> None:
    router = Router("process")
    router.on_event(None, isolation="process")(calls_probe)

    @router.on_event(None)
    async def probe(event: Any) -> int:
        return DEPTH.get()

    async with run_router(router, state_dir=tmp_path) as app:
        assert await app.engine.invoke("probe", {}) == 1
        assert await app.engine.invoke("calls_probe", {}) == 2


async def test_a_rule_that_matches_what_its_target_puts_on_the_bus_is_stopped(
    tmp_path: Path,
) -> None:
    from eventrouter import EventRule, to_bus

    router = Router("bus-loop")
    seen: list[int] = []

    @router.on_event(EventRule(bus="orders", pattern={"source": ["shop"]}))
    async def echo(event: dict[str, Any], ctx: Context) -> None:
        seen.append(event["detail"]["n"])
        detail = {"n": event["detail"]["n"] + 1}
        await ctx.send(to_bus("orders", source="shop", detail_type="again"), detail)

    async with run_router(router, state_dir=tmp_path) as app:
        await app.engine.router.put_events(
            [
                {
                    "Source": "shop",
                    "DetailType": "first",
                    "Detail": '{"n": 1}',
                    "EventBusName": "orders",
                }
            ]
        )
        await app.drain()
        dropped = app.engine.metrics.get("RecursiveInvocationsDropped", "echo")
    # put_events from outside: depth 1; echo runs 16 times, the 17th is stopped.
    assert seen == list(range(1, LIMIT + 1)) and dropped == 1
