"""The polled-queue rules (runtime/policies/queue_poll.py) on an in-memory queue: deletes, partial
batch responses, per-message and FIFO order, filters, poller scaling. SQS runs the same
policy in tests/integration/test_sqs.py."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
import pytest

from eventrouter import Context, Router
from eventrouter.errors import ConfigError
from eventrouter.testing import MemoryQueue, run_router

pytestmark = pytest.mark.anyio


class Job(msgspec.Struct):
    n: int
    fail: bool = False


async def settled(app: Any, queue: MemoryQueue) -> None:
    """Wait until the queue's pollers hold no batch (it was invoked and settled)."""
    await queue.wait_until(lambda: app.engine.streams[0].in_flight == 0)


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m["MessageId"] for m in messages)


async def test_a_successful_batch_is_deleted() -> None:
    router = Router("t")
    queue = MemoryQueue("q", batch_size=10, min_pollers=1)
    seen: list[int] = []

    @router.on_event(queue)
    async def work(batch: list[Job], ctx: Context) -> None:
        assert [r.message_id for r in ctx.records]  # metadata of every message
        seen.extend(j.n for j in batch)

    sent = [queue.send({"n": n}) for n in range(5)]
    async with run_router(router):
        await queue.wait_deleted(5)
    assert sorted(seen) == list(range(5))
    assert ids(queue.deleted) == sorted(sent)


async def test_a_failed_batch_stays_on_the_queue() -> None:
    router = Router("t")
    queue = MemoryQueue("q", batch_size=10, min_pollers=1)
    called = anyio.Event()

    @router.on_event(queue)
    async def work(batch: list[Job]) -> None:
        called.set()
        raise ValueError("no")

    queue.send({"n": 1})
    async with run_router(router) as app:
        await called.wait()
        await settled(app, queue)
    assert queue.deleted == []
    assert len(queue.in_flight) == 1  # reappears after the visibility timeout


async def test_partial_batch_response_deletes_only_the_successes() -> None:
    router = Router("t")
    queue = MemoryQueue("q", batch_size=10, min_pollers=1, report_batch_item_failures=True)

    @router.on_event(queue)
    async def work(batch: list[Job], ctx: Context) -> dict[str, Any]:
        failed = [r.message_id for r, job in zip(ctx.records, batch, strict=True) if job.fail]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    good = [queue.send({"n": 1}), queue.send({"n": 3})]
    bad = queue.send({"n": 2, "fail": True})
    async with run_router(router):
        await queue.wait_deleted(2)
    assert ids(queue.deleted) == sorted(good)
    assert [m["MessageId"] for m in queue.in_flight.values()] == [bad]


async def test_a_malformed_partial_response_keeps_the_whole_batch() -> None:
    router = Router("t")
    queue = MemoryQueue("q", batch_size=10, min_pollers=1, report_batch_item_failures=True)
    called = anyio.Event()

    @router.on_event(queue)
    async def work(batch: list[Job]) -> dict[str, Any]:
        called.set()
        return {"batchItemFailures": [{"itemIdentifier": "unknown-id"}]}

    queue.send({"n": 1})
    queue.send({"n": 2})
    async with run_router(router) as app:
        await called.wait()
        await settled(app, queue)
    assert queue.deleted == []


async def test_fifo_groups_stop_at_their_first_failure() -> None:
    router = Router("t")
    queue = MemoryQueue("q.fifo", batch_size=10, min_pollers=1)
    seen: list[tuple[str, int]] = []

    @router.on_event(queue)
    async def work(job: Job, ctx: Context) -> None:
        group = ctx.record.group_id
        seen.append((group, job.n))
        if job.fail:
            raise ValueError("no")

    for n, fail in ((1, False), (2, True), (3, False)):
        queue.send({"n": n, "fail": fail}, group="a")
    queue.send({"n": 10}, group="b")
    async with run_router(router):
        await queue.wait_deleted(2)
    assert [n for g, n in seen if g == "a"] == [1, 2]  # 3 waits behind the failed 2
    assert ("b", 10) in seen
    assert sorted(m["Body"] for m in queue.in_flight.values()) == sorted(
        ['{"n":2,"fail":true}', '{"n":3,"fail":false}']
    )


async def test_messages_that_match_no_filter_are_deleted_unseen() -> None:
    router = Router("t")
    queue = MemoryQueue("q", min_pollers=1, filters=({"body": {"n": [2]}},))
    seen: list[int] = []

    @router.on_event(queue)
    async def work(batch: list[Job]) -> None:
        seen.extend(j.n for j in batch)

    for n in (1, 2, 3):
        queue.send({"n": n})
    async with run_router(router):
        await queue.wait_deleted(3)
    assert seen == [2]


async def test_invalid_messages_are_left_for_the_redrive_policy() -> None:
    router = Router("t")
    queue = MemoryQueue("q", min_pollers=1)

    @router.on_event(queue)
    async def work(batch: list[Job]) -> None:
        pass

    queue.send({"n": 1})
    bad = queue.send({"n": "x"})
    async with run_router(router) as app:
        await queue.wait_deleted(1)
        await settled(app, queue)
        assert app.engine.metrics.get("InvalidRecords", "work") == 1
    assert [m["MessageId"] for m in queue.in_flight.values()] == [bad]


async def test_pollers_scale_up_with_a_backlog_and_down_when_empty() -> None:
    router = Router("t")
    queue = MemoryQueue(
        "q",
        batch_size=1,
        min_pollers=1,
        scale_tick=0.02,
        scale_up_per_minute=3000,  # one more poller per tick
        wait_time_seconds=0,
    )
    release = anyio.Event()

    @router.on_event(queue, reserved_concurrency=8)
    async def work(job: Job) -> None:
        await release.wait()

    for n in range(50):
        queue.send({"n": n})
    async with run_router(router) as app:
        policy: Any = app.engine.streams[0]
        # Full receives while slots are free: more pollers.
        await queue.wait_until(lambda: policy.target == 8)
        release.set()
        await queue.wait_deleted(50)
        # Empty receives: back to min_pollers.
        await queue.wait_until(lambda: policy.target == 1)
        peak = max(n for _, n in policy.history)
    assert peak == 8  # never past the function's reserved concurrency


async def test_a_visibility_timeout_shorter_than_the_function_timeout_is_refused() -> None:
    router = Router("t")

    @router.on_event(MemoryQueue("q", visibility_timeout=5), timeout=10)
    async def work(batch: list[Job]) -> None:
        pass

    with pytest.raises(ConfigError, match="visibility timeout"):
        async with run_router(router):
            pass
