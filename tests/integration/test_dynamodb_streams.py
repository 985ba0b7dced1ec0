"""The DynamoDB Streams source against moto's server, fed by table writes: Lambda's event
(INSERT / MODIFY / REMOVE with old and new images), typed images, filters, failure records
and bad input. The stream rules are the ones tests/unit/test_shards.py checks."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.to_thread
import boto3
import msgspec
import pytest

from eventrouter import Context, DynamoDBRecord, DynamoDBStream, Router, SourceError, to_sqs
from eventrouter.testing import run_router
from tests.kafka_broker import unique
from tests.lambda_models import check_event
from tests.progress import Progress

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

FAST = {"poll_interval": 0.05, "discovery_interval": 0.3, "retry_backoff": (0.0, 0.0)}


class Order(msgspec.Struct):
    id: str
    total: int = 0
    tags: list[str] = []


def make_table(moto: str, *, stream: bool = True) -> str:
    name = unique("orders")
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"} if stream else {}
    boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **({"StreamSpecification": spec} if stream else {}),
    )
    return name


def write_changes(moto: str, table: str) -> None:
    """An INSERT, a MODIFY and a REMOVE of one item, then an INSERT of another."""
    db = boto3.client("dynamodb", endpoint_url=moto, region_name="us-east-1")
    first = {"id": {"S": "a"}, "total": {"N": "1"}, "tags": {"SS": ["new"]}}
    db.put_item(TableName=table, Item=first)
    db.put_item(TableName=table, Item={**first, "total": {"N": "2"}})
    db.delete_item(TableName=table, Key={"id": {"S": "a"}})
    db.put_item(TableName=table, Item={"id": {"S": "b"}, "total": {"N": "7"}})


async def test_changes_in_lambdas_event_and_as_typed_images(moto: str) -> None:
    table = make_table(moto)
    write_changes(moto, table)
    router = Router("t")
    raw: list[dict[str, Any]] = []
    typed: list[tuple[Order, DynamoDBRecord]] = []
    progress = Progress(within=20)

    @router.on_event(DynamoDBStream(table, endpoint_url=moto, **FAST))
    async def as_event(event: dict[str, Any]) -> None:
        raw.extend(event["Records"])
        check_event("dynamodb", event)
        progress.note()

    @router.on_event(DynamoDBStream(table, endpoint_url=moto, **FAST))
    async def as_batch(batch: list[Order], ctx: Context) -> None:
        typed.extend(zip(batch, ctx.records, strict=True))
        progress.note()

    async with run_router(router):
        await progress.until(lambda: len(raw) == 4 and len(typed) == 4)
    assert [r["eventName"] for r in raw] == ["INSERT", "MODIFY", "REMOVE", "INSERT"]
    insert, modify, remove, _ = raw
    assert all(r["eventSource"] == "aws:dynamodb" for r in raw)
    assert all(":table/" in r["eventSourceARN"] and "/stream/" in r["eventSourceARN"] for r in raw)
    assert insert["dynamodb"]["Keys"] == {"id": {"S": "a"}}
    assert insert["dynamodb"]["NewImage"]["total"] == {"N": "1"}
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["total"] == {"N": "1"}
    assert modify["dynamodb"]["NewImage"]["total"] == {"N": "2"}
    assert remove["dynamodb"]["OldImage"]["total"] == {"N": "2"}
    assert "NewImage" not in remove["dynamodb"]
    assert modify["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert isinstance(insert["dynamodb"]["ApproximateCreationDateTime"], float)
    assert int(modify["dynamodb"]["SequenceNumber"]) > int(insert["dynamodb"]["SequenceNumber"])
    # Typed: the new image (the old one for REMOVE), decoded from attribute values.
    orders = [order for order, _ in typed]
    assert orders == [
        Order("a", 1, ["new"]),
        Order("a", 2, ["new"]),
        Order("a", 2, ["new"]),
        Order("b", 7),
    ]
    names = [record.event_name for _, record in typed]
    assert names == ["INSERT", "MODIFY", "REMOVE", "INSERT"]
    _, modified = typed[1]
    assert modified.keys == {"id": "a"}
    assert modified.old_image is not None and modified.old_image["total"] == 1
    assert modified.new_image is not None and modified.new_image["total"] == 2


async def test_filters_match_the_image_as_lambdas_do(moto: str) -> None:
    table = make_table(moto)
    write_changes(moto, table)
    router = Router("t")
    seen: list[str] = []
    progress = Progress(within=20)
    source = DynamoDBStream(
        table,
        endpoint_url=moto,
        filters=[{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"total": {"N": ["7"]}}}}],
        **FAST,
    )

    @router.on_event(source)
    async def big(event: dict[str, Any]) -> None:
        seen.extend(r["dynamodb"]["Keys"]["id"]["S"] for r in event["Records"])
        progress.note()

    async with run_router(router) as app:
        await progress.until(lambda: seen == ["b"])
        assert app.engine.metrics.get("FilteredRecords", "big") == 3


async def test_exhausted_retries_send_a_ddb_stream_failure_record(moto: str) -> None:
    table = make_table(moto)
    write_changes(moto, table)
    sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")
    queue = sqs.create_queue(QueueName=unique("failed"))["QueueUrl"]
    router = Router("t")
    calls = 0
    progress = Progress(within=20)

    @router.on_event(
        DynamoDBStream(table, endpoint_url=moto, max_retries=1, **FAST),
        on_failure=to_sqs(queue, endpoint_url=moto),
    )
    async def broken(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        progress.note()
        raise RuntimeError("down")

    async with run_router(router):
        await progress.until(lambda: calls == 2)
        messages: list[Any] = []
        with anyio.fail_after(20):
            while not messages:
                found = await anyio.to_thread.run_sync(
                    lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
                )
                messages = found.get("Messages", [])
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 4
    assert info["streamArn"].startswith("arn:aws:dynamodb:")
    assert int(info["endSequenceNumber"]) > int(info["startSequenceNumber"])
    assert record["responsePayload"]["errorType"] == "RuntimeError"


@pytest.mark.parametrize(
    ("stream", "message"),
    [(None, "no such table"), (False, "the table has no stream")],
)
async def test_bad_tables_are_clear_errors(moto: str, stream: bool | None, message: str) -> None:
    table = "no-such-table" if stream is None else make_table(moto, stream=False)
    router = Router("t")

    @router.on_event(DynamoDBStream(table, endpoint_url=moto))
    async def changed(event: dict[str, Any]) -> None: ...

    with pytest.raises(SourceError, match=message):
        async with run_router(router):
            pass
