"""AWS destinations delivering to moto's server, read back with boto3."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from eventrouter import Router, to_eventbridge, to_s3, to_sns, to_sqs
from eventrouter.testing import run_router
from tests.kafka_broker import unique

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def receive_one(sqs: Any, url: str) -> dict[str, Any]:
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])
    raise AssertionError("nothing arrived")


def failing_router(destination: Any) -> Router:
    router = Router("t")

    @router.on_event(max_retries=0, on_failure=destination)
    async def fails(event: Any) -> None:
        raise RuntimeError("to the destination")

    return router


async def test_to_sqs(moto: str) -> None:
    sqs = client("sqs", moto)
    name = unique("failed")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    router = failing_router(to_sqs(name, region="us-east-1", endpoint_url=moto))
    async with run_router(router) as app:
        request_id = await app.invoke_async("fails", {"n": 1})
        record = await app.next_record("fails", "on_failure")
    body = receive_one(sqs, url)
    assert body == record
    assert body["requestContext"]["requestId"] == request_id
    assert body["requestPayload"] == {"n": 1}


async def test_to_sns(moto: str) -> None:
    sns, sqs = client("sns", moto), client("sqs", moto)
    topic = sns.create_topic(Name=unique("results"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique("sub"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    router = Router("t")

    @router.on_event(on_success=to_sns(topic, region="us-east-1", endpoint_url=moto))
    async def ok(event: Any) -> Any:
        return {"done": event}

    async with run_router(router) as app:
        await app.invoke_async("ok", 5)
        record = await app.next_record("ok", "on_success")
    envelope = receive_one(sqs, url)
    assert envelope["TopicArn"] == topic
    assert json.loads(envelope["Message"]) == record


async def test_to_eventbridge(moto: str) -> None:
    events, sqs = client("events", moto), client("sqs", moto)
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=unique("events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["shop.orders"]})
    )
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    destination = to_eventbridge(
        bus, source="shop.orders", detail_type="Order failed", region="us-east-1", endpoint_url=moto
    )
    async with run_router(failing_router(destination)) as app:
        await app.invoke_async("fails", {"order": 9})
        record = await app.next_record("fails", "on_failure")
    event = receive_one(sqs, url)
    assert event["source"] == "shop.orders" and event["detail-type"] == "Order failed"
    assert event["detail"] == record


async def test_to_s3(moto: str) -> None:
    s3 = client("s3", moto)
    bucket = unique("failures")
    s3.create_bucket(Bucket=bucket)
    router = failing_router(to_s3(bucket, "failed/", region="us-east-1", endpoint_url=moto))
    async with run_router(router) as app:
        request_id = await app.invoke_async("fails", {"n": 2})
        record = await app.next_record("fails", "on_failure")
    obj = s3.get_object(Bucket=bucket, Key=f"failed/{request_id}.json")
    assert json.loads(obj["Body"].read()) == record


async def test_failed_delivery_is_counted_and_kept(moto: str) -> None:
    router = failing_router(to_sqs(unique("missing"), region="us-east-1", endpoint_url=moto))
    async with run_router(router) as app:
        request_id = await app.invoke_async("fails", {})
        delivery, error = await app.wait_failed_delivery()
        await app.engine.store.flush()
        assert await app.engine.store.count() == 1  # held for another try, not dropped
    assert delivery.record["requestContext"]["requestId"] == request_id
    assert "NonExistentQueue" in repr(error) or "QueueDoesNotExist" in repr(error)
    assert app.engine.metrics.get("DestinationDeliveryFailures", "fails") == 1
