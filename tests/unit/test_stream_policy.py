"""The stream rules (runtime/policies/stream.py) on an in-memory stream: retries, bisect, partial
batch responses, record age, checkpoints, order. Kafka runs the same policy in
tests/integration/test_kafka.py."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from eventrouter import Context, Router, to_queue
from eventrouter.testing import MemoryStream, run_router

pytestmark = pytest.mark.anyio

FAST = {"retry_backoff": (0.0, 0.0)}


class Item(msgspec.Struct):
    n: int
    bad: bool = False


async def test_batches_in_order_and_checkpoint_after_success() -> None:
    router = Router("t")
    stream = MemoryStream("s", partitions=2, batch_size=3, **FAST)
    seen: dict[int, list[int]] = {0: [], 1: []}

    @router.on_event(stream)
    async def consume(batch: list[Item], ctx: Context) -> None:
        for record, item in zip(ctx.records, batch, strict=True):
            seen[record.partition].append(item.n)

    for n in range(7):
        stream.append({"n": n}, partition=n % 2)
    async with run_router(router):
        await stream.wait_committed(0, 4)
        await stream.wait_committed(1, 3)
    assert seen == {0: [0, 2, 4, 6], 1: [1, 3, 5]}


async def test_retries_then_failure_record_then_the_partition_moves_on() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=2, max_retries=2, **FAST)
    calls: list[list[int]] = []

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def consume(batch: list[Item]) -> None:
        calls.append([i.n for i in batch])
        if any(i.bad for i in batch):
            raise ValueError("bad item")

    stream.append({"n": 0, "bad": True})
    stream.append({"n": 1})
    stream.append({"n": 2})
    async with run_router(router) as app:
        await stream.wait_committed(0, 3)
        records = await app.queue_messages("failed")
    assert calls == [[0, 1], [0, 1], [0, 1], [2]]  # 1 + max_retries invocations, then on
    (record,) = records
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert "requestPayload" not in record
    info = record["KafkaBatchInfo"]
    assert (info["batchSize"], info["firstOffset"], info["lastOffset"]) == (2, 0, 1)


async def test_bisect_isolates_the_failing_record() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=4, bisect_on_error=True, max_retries=0, **FAST)
    ok: list[int] = []

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def consume(batch: list[Item]) -> None:
        if any(i.bad for i in batch):
            raise ValueError("bad item")
        ok.extend(i.n for i in batch)

    for n in range(4):
        stream.append({"n": n, "bad": n == 2})
    async with run_router(router) as app:
        await stream.wait_committed(0, 4)
        records = await app.queue_messages("failed")
    assert sorted(ok) == [0, 1, 3]
    (record,) = records
    info = record["KafkaBatchInfo"]
    assert (info["batchSize"], info["firstOffset"]) == (1, 2)


async def test_partial_batch_response_restarts_at_the_lowest_failure() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=4, report_batch_item_failures=True, **FAST)
    calls: list[list[int]] = []

    @router.on_event(stream)
    async def consume(batch: list[Item], ctx: Context) -> dict[str, Any]:
        calls.append([i.n for i in batch])
        if len(calls) == 1:  # the first time, offsets 3 and 2 fail
            failed = [r for r in ctx.records if r.offset in (3, 2)]
            return {
                "batchItemFailures": [
                    {"itemIdentifier": {"topic-partition": f"{r.topic}-0", "offset": r.offset}}
                    for r in failed
                ]
            }
        return {"batchItemFailures": []}

    for n in range(4):
        stream.append({"n": n})
    async with run_router(router):
        await stream.wait_committed(0, 4)
    assert calls == [[0, 1, 2, 3], [2, 3]]


async def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=2, report_batch_item_failures=True, **FAST)
    calls: list[list[int]] = []

    @router.on_event(stream)
    async def consume(batch: list[Item]) -> dict[str, Any]:
        calls.append([i.n for i in batch])
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "no such record"}]}
        return {}

    stream.append({"n": 0})
    stream.append({"n": 1})
    async with run_router(router):
        await stream.wait_committed(0, 2)
    assert calls == [[0, 1], [0, 1]]


async def test_record_age_ends_the_retries() -> None:
    router = Router("t")
    stream = MemoryStream("s", max_record_age=60, **FAST)

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def consume(batch: list[Item]) -> None:
        raise ValueError("always")

    stream.append({"n": 0}, age=61)
    async with run_router(router) as app:
        await stream.wait_committed(0, 1)
        (record,) = await app.queue_messages("failed")
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1


async def test_an_undecodable_record_goes_to_on_failure_at_once() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=3, **FAST)
    ok: list[int] = []

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def consume(batch: list[Item]) -> None:
        ok.extend(i.n for i in batch)

    stream.append({"n": 0})
    stream.append({"n": "not a number"})
    stream.append({"n": 2})
    async with run_router(router) as app:
        await stream.wait_committed(0, 3)
        (record,) = await app.queue_messages("failed")
    assert ok == [0, 2]
    assert record["requestContext"]["condition"] == "InvalidPayload"
    assert record["responsePayload"]["errorType"] == "Runtime.UnmarshalError"


async def test_a_per_record_handler_restarts_at_the_failed_record() -> None:
    router = Router("t")
    stream = MemoryStream("s", batch_size=3, **FAST)
    seen: list[int] = []

    @router.on_event(stream)
    async def consume(item: Item) -> None:
        seen.append(item.n)
        if item.n == 1 and seen.count(1) == 1:
            raise ValueError("first time only")

    for n in range(3):
        stream.append({"n": n})
    async with run_router(router):
        await stream.wait_committed(0, 3)
    assert seen == [0, 1, 1, 2]  # record 0 is done and not handled again


async def test_filters_skip_records_and_count_them_done() -> None:
    router = Router("t")
    stream = MemoryStream("s", filters=({"value": {"n": [1]}},), **FAST)
    seen: list[int] = []

    @router.on_event(stream)
    async def consume(batch: list[Item]) -> None:
        seen.extend(i.n for i in batch)

    for n in range(3):
        stream.append({"n": n})
    async with run_router(router) as app:
        await stream.wait_committed(0, 3)
        assert app.engine.metrics.get("FilteredRecords", "consume") == 2
    assert seen == [1]
