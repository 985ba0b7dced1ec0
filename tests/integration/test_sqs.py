"""The SQS source against moto's server (started by the suite), with scaling pollers."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anyio
import anyio.to_thread
import boto3
import msgspec
import pytest

from eventrouter import ConfigError, Context, Router, Sqs
from eventrouter.testing import run_router
from tests.kafka_broker import unique
from tests.lambda_models import check_event
from tests.progress import Progress

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class Order(msgspec.Struct):
    n: int
    bad: bool = False


async def eventually(check: Any, within: float = 20) -> None:
    """For state only moto holds (queue depth): ask it until the check passes."""
    with anyio.fail_after(within):
        # Nothing to await in another process: ask it again after a short pause.
        while not await anyio.to_thread.run_sync(check):  # noqa: ASYNC110
            await anyio.sleep(0.1)


def sqs_client(moto: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")


def make_queue(
    moto: str,
    *,
    fifo: bool = False,
    visibility: int = 1,
    dlq_after: int | None = None,
) -> tuple[str, str, str | None]:
    sqs = sqs_client(moto)
    name = unique("q") + (".fifo" if fifo else "")
    attributes = {"VisibilityTimeout": str(visibility)}
    if fifo:
        attributes["FifoQueue"] = "true"
    dlq_url = None
    if dlq_after is not None:
        dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(dlq_after)}
        )
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return name, url, dlq_url


def make_queue_named(moto: str, name: str) -> tuple[str, str, None]:
    url = sqs_client(moto).create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})
    return name, url["QueueUrl"], None


def send(moto: str, url: str, bodies: list[Any], group: str | None = None) -> list[str]:
    sqs = sqs_client(moto)
    ids = []
    for i, body in enumerate(bodies):
        extra = {"MessageGroupId": group, "MessageDeduplicationId": f"{group}-{i}"} if group else {}
        ids.append(
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body), **extra)["MessageId"]
        )
    return ids


def depth(moto: str, url: str) -> int:
    attributes = sqs_client(moto).get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def source(moto: str, name: str, **options: Any) -> Sqs:
    options.setdefault("wait_time_seconds", 1)
    options.setdefault("min_pollers", 2)
    return Sqs(name, endpoint_url=moto, region="us-east-1", **options)


async def test_batch_success_deletes(moto: str) -> None:
    name, url, _ = make_queue(moto)
    send(moto, url, [{"n": i} for i in range(25)])
    seen: list[int] = []
    router = Router("t")
    progress = Progress()

    @router.on_event(source(moto, name), timeout=1)
    async def handle(batch: list[Order], ctx: Context) -> None:
        assert ctx.records is not None and len(ctx.records) == len(batch) <= 10
        seen.extend(o.n for o in batch)
        progress.note()

    async with run_router(router):
        await progress.until(lambda: len(seen) >= 25)
    assert sorted(seen) == list(range(25))
    assert depth(moto, url) == 0


async def test_partial_batch_failure_leaves_only_failed_ids(moto: str) -> None:
    name, url, _ = make_queue(moto)
    ids = send(moto, url, [{"n": i, "bad": i in (1, 3)} for i in range(5)])
    deliveries: list[str] = []
    failed_once: set[int] = set()
    router = Router("t")
    progress = Progress()

    @router.on_event(source(moto, name, report_batch_item_failures=True), timeout=1)
    async def handle(batch: list[Order], ctx: Context) -> dict[str, Any]:
        assert ctx.records is not None
        failures = []
        for order, message in zip(batch, ctx.records, strict=True):
            deliveries.append(message.message_id)
            if order.bad and order.n not in failed_once:
                failed_once.add(order.n)
                failures.append({"itemIdentifier": message.message_id})
        progress.note()
        return {"batchItemFailures": failures}

    async with run_router(router):
        await progress.until(lambda: len(deliveries) >= 7)
        await eventually(lambda: depth(moto, url) == 0)
    counts = {i: deliveries.count(i) for i in ids}
    assert counts == {ids[0]: 1, ids[1]: 2, ids[2]: 1, ids[3]: 2, ids[4]: 1}
    assert depth(moto, url) == 0


async def test_redrive_to_dead_letter_queue(moto: str) -> None:
    name, url, dlq = make_queue(moto, dlq_after=2)
    assert dlq is not None
    send(moto, url, [{"n": 1, "bad": True}, {"n": 2}])
    attempts: list[int] = []
    router = Router("t")
    progress = Progress()

    @router.on_event(source(moto, name, min_pollers=1), timeout=1)
    async def handle(order: Order, ctx: Context) -> None:
        if order.bad:
            attempts.append(ctx.attempt)
            progress.note()
            raise ValueError("never works")

    async with run_router(router):
        await progress.until(lambda: len(attempts) >= 2)
    sqs = sqs_client(moto)
    moved: list[dict[str, Any]] = []

    def in_dlq() -> bool:
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # moto redrives on a receive
        moved.extend(sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages", []))
        return bool(moved)

    await eventually(in_dlq)
    assert json.loads(moved[0]["Body"]) == {"n": 1, "bad": True}
    assert attempts[:2] == [1, 2]  # ApproximateReceiveCount as ctx.attempt


async def test_fifo_order_per_group_and_a_failing_group(moto: str) -> None:
    name, url, _ = make_queue(moto, fifo=True)
    send(moto, url, [{"n": i} for i in range(4)], group="a")
    send(moto, url, [{"n": 10 + i, "bad": i == 1} for i in range(4)], group="b")
    seen: list[tuple[str, int]] = []
    failed = False
    router = Router("t")
    progress = Progress()

    @router.on_event(source(moto, name, min_pollers=1), timeout=1)
    async def handle(order: Order, ctx: Context) -> None:
        nonlocal failed
        group = ctx.record.group_id
        seen.append((group, order.n))
        progress.note()
        if order.bad and not failed:
            failed = True
            raise ValueError("b fails once at its second message")

    async with run_router(router):
        await progress.until(lambda: len([n for g, n in seen if g == "b"]) == 5)
    a = [n for g, n in seen if g == "a"]
    b = [n for g, n in seen if g == "b"]
    assert a == [0, 1, 2, 3]
    # In the first batch, b ran in order and stopped at its failure: 12 and 13 were left on
    # the queue with 11. All three came back once. (moto does not keep a FIFO group's order
    # when messages reappear after their visibility timeout, so that order is not asserted.)
    assert b[:2] == [10, 11]
    assert sorted(b[2:]) == [11, 12, 13]


async def test_raw_lambda_event_and_filters(moto: str) -> None:
    name, url, _ = make_queue(moto)
    sqs_client(moto).send_message(
        QueueUrl=url,
        MessageBody=json.dumps({"kind": "keep", "n": 1}),
        MessageAttributes={
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffraw"},
            "who": {"DataType": "String", "StringValue": "ann"},
        },
    )
    send(moto, url, [{"kind": "drop", "n": 2}])
    events: list[dict[str, Any]] = []
    router = Router("t")

    @router.on_event(source(moto, name, filters=[{"body": {"kind": ["keep"]}}]), timeout=1)
    def raw(event: dict[str, Any]) -> None:
        events.append(event)

    async with run_router(router) as app:
        await eventually(lambda: depth(moto, url) == 0)
        assert app.engine.metrics.get("FilteredRecords", "raw") == 1
    (event,) = events
    (record,) = event["Records"]
    assert json.loads(record["body"]) == {"kind": "keep", "n": 1}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(f":{name}")
    assert record["awsRegion"] == "us-east-1"
    assert len(record["md5OfBody"]) == 32 and record["receiptHandle"]
    # Binary attributes arrive as base64 text, as Lambda sends them; only the value field of
    # the attribute's type is present.
    blob = record["messageAttributes"]["blob"]
    assert blob["dataType"] == "Binary" and "stringValue" not in blob
    assert base64.b64decode(blob["binaryValue"]) == b"\x00\xffraw"
    assert record["messageAttributes"]["who"]["stringValue"] == "ann"
    parsed = check_event("sqs", event)
    assert parsed.Records[0].messageAttributes["who"].stringValue == "ann"


async def test_pollers_scale_up_with_a_backlog_and_down_when_empty(moto: str) -> None:
    name, url, _ = make_queue(moto, visibility=5)
    send(moto, url, [{"n": i} for i in range(150)])
    handled = 0
    router = Router("t")
    progress = Progress()
    src = source(
        moto,
        name,
        min_pollers=1,
        max_concurrency=6,
        scale_tick=0.2,
        scale_up_per_minute=600,
        wait_time_seconds=0,
    )

    @router.on_event(src, timeout=5)
    async def handle(batch: list[Order]) -> None:
        nonlocal handled
        await anyio.sleep(0.05)
        handled += len(batch)
        progress.note()

    async with run_router(router) as app:
        policy = app.engine.streams[0]
        await progress.until(lambda: handled >= 150)
        peak = max(count for _, count in policy.history)
        await eventually(lambda: policy.target == 1, within=10)
    assert policy.history[0][1] == 1
    assert peak == 6  # capped by max_concurrency
    assert policy.target == 1


async def test_visibility_timeout_shorter_than_timeout_is_refused(moto: str) -> None:
    name, _, _ = make_queue(moto, visibility=2)
    router = Router("t")

    @router.on_event(source(moto, name), timeout=30)
    async def handle(batch: list[Order]) -> None: ...

    with pytest.raises(ConfigError, match="visibility timeout"):
        async with run_router(router):
            pass


async def test_shutdown_does_not_wait_for_long_polls(moto: str) -> None:
    name, _, _ = make_queue(moto)
    router = Router("t")

    @router.on_event(source(moto, name, wait_time_seconds=20), timeout=1)
    async def handle(batch: list[Order]) -> None: ...

    async with run_router(router, grace=30) as app:
        policy = app.engine.streams[0]
        await eventually(lambda: policy.receiving == policy.target)
        leaving = time.monotonic()
    assert time.monotonic() - leaving < 5  # a 20 s long poll did not hold the shutdown


async def test_queue_service_down_then_back(tmp_path: Any) -> None:
    """moto stopped mid-run: the source logs, backs off, and carries on once it is back."""
    from tests.aws_server import start_moto

    with start_moto(tmp_path / "moto.log") as (endpoint, stop, restart):
        name, url, _ = make_queue(endpoint)
        send(endpoint, url, [{"n": 1}])
        seen: list[int] = []
        router = Router("t")
        progress = Progress()

        @router.on_event(source(endpoint, name, min_pollers=1, wait_time_seconds=0), timeout=1)
        async def handle(batch: list[Order]) -> None:
            seen.extend(o.n for o in batch)
            progress.note()

        async with run_router(router) as app:
            await progress.until(lambda: seen == [1])
            stop()
            await eventually(lambda: app.engine.metrics.get("SourceErrors", "handle") >= 1, 40)
            restart()
            # moto keeps its state in memory: the queue is made again, as after a redeploy.
            _, url, _ = make_queue_named(endpoint, name)
            send(endpoint, url, [{"n": 2}])
            await progress.until(lambda: seen == [1, 2], within=60)
