"""SNS and S3 as event sources against moto's server: through SQS (the router makes and
subscribes the queue, configures the bucket), SNS's HTTP subscription (moto's signed
deliveries, and the tests' own signed messages for confirmation and refusals), an
S3-compatible webhook, retries to ``on_failure``, and Lambda's shapes (Powertools)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import anyio
import anyio.to_thread
import boto3
import httpx
import pytest

from eventrouter import S3, Router, Sns, to_queue
from eventrouter.testing import run_router
from tests.kafka_broker import unique
from tests.lambda_models import check_event
from tests.processes import RouterProcess, wait_until
from tests.sns_signing import Signer, confirmation, notification, sns_host

pytestmark = [pytest.mark.integration]
anyio_test = pytest.mark.anyio


class Seen:
    """Events a handler got; a test waits until there are enough."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    async def until(self, count: int, within: float = 20) -> None:
        with anyio.fail_after(within):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()


def client(service: str, moto: str) -> Any:
    return boto3.client(service, endpoint_url=moto, region_name="us-east-1")


def attribute(value: str) -> dict[str, Any]:
    return {"store": {"DataType": "String", "StringValue": value}}


@anyio_test
async def test_sns_through_a_queue_the_router_subscribes_with_a_filter_policy(moto: str) -> None:
    sns = client("sns", moto)
    topic = sns.create_topic(Name=unique("orders"))["TopicArn"]
    router = Router("t")
    seen = Seen()

    @router.on_event(
        Sns(
            topic,
            endpoint_url=moto,
            filter_policy={"store": ["example_corp"], "total": [{"numeric": [">", 10]}]},
            wait_time_seconds=1,
        )
    )
    async def on_order(event: dict[str, Any]) -> None:
        seen.add(event)

    async with run_router(router) as app:
        for store, total in (("example_corp", 20), ("other", 20), ("example_corp", 5)):
            sns.publish(
                TopicArn=topic,
                Message=json.dumps({"total": total}),
                Subject="order",
                MessageAttributes={
                    **attribute(store),
                    "total": {"DataType": "Number", "StringValue": str(total)},
                },
            )
        await seen.until(1)
        feed = app.engine.running["on_order"]
        await feed.wait_until(lambda: feed.fed + feed.dropped == 3, within=60)  # moto, loaded
    assert (feed.fed, feed.dropped) == (1, 2)
    (event,) = seen.events
    check_event("sns", event)
    record = event["Records"][0]
    assert record["EventSource"] == "aws:sns"
    assert record["EventSubscriptionArn"].startswith(f"{topic}:")
    assert record["Sns"]["Subject"] == "order"
    assert json.loads(record["Sns"]["Message"]) == {"total": 20}
    assert record["Sns"]["MessageAttributes"]["store"] == {
        "Type": "String",
        "Value": "example_corp",
    }


@anyio_test
async def test_sns_http_subscription_with_moto_signed_deliveries(moto: str) -> None:
    sns = client("sns", moto)
    topic = sns.create_topic(Name=unique("orders"))["TopicArn"]
    router = Router("t")
    seen = Seen()

    with sns_host(moto=moto) as (host, requests):

        @router.on_event(Sns(topic, delivery="http", signing_cert_endpoint=host))
        async def on_order(event: dict[str, Any]) -> None:
            seen.add(event)

        await deliver_from_moto(router, sns, topic, seen)
    assert any(r.endswith(".pem") for r in requests)  # the signature was checked
    check_event("sns", seen.events[0])
    sns_record = seen.events[0]["Records"][0]["Sns"]
    assert sns_record["Message"] == "hello" and sns_record["SignatureVersion"] == "2"


async def deliver_from_moto(router: Router, sns: Any, topic: str, seen: Seen) -> None:
    async with run_router(router, http="127.0.0.1:0") as app:
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{app.url}/sns/on_order")
        # moto posts to the router before its Publish answers: from another thread.
        await anyio.to_thread.run_sync(
            lambda: sns.publish(TopicArn=topic, Message="hello", MessageAttributes=attribute("a"))
        )
        await seen.until(1)


@anyio_test
async def test_sns_http_confirms_checks_signatures_and_refuses_replays() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:orders"
    signer = Signer()
    router = Router("t")
    seen = Seen()

    with sns_host(signer) as (host, requests):

        @router.on_event(
            Sns(topic, delivery="http", signing_cert_endpoint=host, path="/hooks/orders")
        )
        async def on_order(event: dict[str, Any]) -> None:
            seen.add(event)

        async with run_router(router, http="127.0.0.1:0") as app, httpx.AsyncClient() as http:

            async def post(message: dict[str, Any], kind: str | None = None) -> httpx.Response:
                headers = {"x-amz-sns-message-type": kind or message["Type"]}
                return await http.post(
                    f"{app.url}/hooks/orders", content=json.dumps(message), headers=headers
                )

            confirm = signer.sign(confirmation(topic), version="1")
            assert (await post(confirm)).status_code == 200
            assert any("Action=ConfirmSubscription" in r for r in requests)
            other = signer.sign(confirmation("arn:aws:sns:us-east-1:123456789012:other"))
            assert (await post(other)).status_code == 403  # not a topic of this function
            assert sum("Action=ConfirmSubscription" in r for r in requests) == 1

            good = signer.sign(notification(topic, "one"), version="1")
            assert (await post(good)).status_code == 200
            assert (await post(signer.sign(notification(topic, "two")))).status_code == 200
            await seen.until(2)
            assert (await post(good)).status_code == 409  # the same message again

            forged = {**signer.sign(notification(topic, "three")), "Message": "forged"}
            stale = signer.sign(notification(topic, "old", Timestamp="2020-01-01T00:00:00.000Z"))
            elsewhere = {
                **signer.sign(notification(topic, "four")),
                "SigningCertURL": "https://evil.example.com/SimpleNotificationService-x.pem",
            }
            unsigned = notification(topic, "five")
            for refused in (forged, stale, elsewhere, unsigned):
                assert (await post(refused)).status_code == 403, refused["Message"]
            ended = signer.sign(confirmation(topic, "UnsubscribeConfirmation"))
            assert (await post(ended)).status_code == 200
            assert (await http.post(f"{app.url}/hooks/orders", content=b"nope")).status_code == 403
            certificate_fetches = sum(r.endswith(".pem") for r in requests)
            assert app.engine.metrics.get("InvalidNotifications", "on_order") == 6
    assert [e["Records"][0]["Sns"]["Message"] for e in seen.events] == ["one", "two"]
    assert certificate_fetches == 1  # cached
    for event in seen.events:
        check_event("sns", event)


@anyio_test
async def test_s3_through_a_queue_the_router_configures_with_prefix_and_suffix(
    moto: str,
) -> None:
    s3 = client("s3", moto)
    bucket = unique("uploads")
    s3.create_bucket(Bucket=bucket)
    router = Router("t")
    created, removed = Seen(), Seen()
    source = {"endpoint_url": moto, "prefix": "images/", "suffix": ".jpg", "wait_time_seconds": 1}

    @router.on_event(S3(bucket, **source))
    async def thumbnail(event: dict[str, Any]) -> None:
        created.add(event)

    @router.on_event(S3(bucket, events=["s3:ObjectRemoved:*"], **source))
    async def forget(event: dict[str, Any]) -> None:
        removed.add(event)

    key = "images/my photo ü+1.jpg"
    async with run_router(router):
        for name in (key, "images/notes.txt", "docs/a.jpg"):
            s3.put_object(Bucket=bucket, Key=name, Body=b"x")
        s3.delete_object(Bucket=bucket, Key=key)
        await created.until(1)
        await removed.until(1)
    for event, name in ((created.events[0], "ObjectCreated:Put"), (removed.events[0], None)):
        check_event("s3", event)
        record = event["Records"][0]
        assert unquote_plus(record["s3"]["object"]["key"]) == key  # decoded once, as Lambda
        assert record["s3"]["bucket"]["name"] == bucket
        assert record["eventSource"] == "aws:s3"
        if name:
            assert record["eventName"] == name
        else:
            assert record["eventName"].startswith("ObjectRemoved:")
    assert len(created.events) == 1 and len(removed.events) == 1


@anyio_test
async def test_s3_compatible_webhook_with_a_token() -> None:
    router = Router("t")
    seen = Seen()

    @router.on_event(S3("media", delivery="webhook", token="s3cret", suffix=".png"))
    async def resize(event: dict[str, Any]) -> None:
        seen.add(event)

    def minio(key: str) -> dict[str, Any]:  # what MinIO posts (its own extra fields kept)
        return {
            "EventName": "s3:ObjectCreated:Put",
            "Key": f"media/{key}",
            "Records": [
                {
                    "eventVersion": "2.0",
                    "eventSource": "minio:s3",
                    "awsRegion": "",
                    "eventTime": "2026-12-04T10:00:00.000Z",
                    "eventName": "s3:ObjectCreated:Put",
                    "userIdentity": {"principalId": "minioadmin"},
                    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                    "responseElements": {"x-amz-request-id": "17F", "x-amz-id-2": "dd9"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "Config",
                        "bucket": {
                            "name": "media",
                            "ownerIdentity": {"principalId": "minioadmin"},
                            "arn": "arn:aws:s3:::media",
                        },
                        "object": {"key": key, "size": 3, "eTag": "abc", "sequencer": "17F1"},
                    },
                }
            ],
        }

    async with run_router(router, http="127.0.0.1:0") as app, httpx.AsyncClient() as http:
        url = f"{app.url}/s3/resize"
        ok = await http.post(url, json=minio("a+b.png"), headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and len(ok.json()["requestIds"]) == 1
        skipped = await http.post(url, json=minio("a.jpg"), headers={"Authorization": "s3cret"})
        assert skipped.status_code == 200 and skipped.json()["requestIds"] == []
        bad = await http.post(url, json=minio("b.png"), headers={"Authorization": "Bearer no"})
        assert bad.status_code == 403
        test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "media"}
        dropped = await http.post(url, json=test_event, headers={"Authorization": "Bearer s3cret"})
        assert dropped.status_code == 200 and dropped.json()["requestIds"] == []
        await seen.until(1)
    (event,) = seen.events
    check_event("s3", event)
    record = event["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"]["key"] == "a+b.png"  # as the store sent it


@anyio_test
async def test_each_notification_is_retried_then_goes_to_on_failure(moto: str) -> None:
    sns = client("sns", moto)
    topic = sns.create_topic(Name=unique("orders"))["TopicArn"]
    router = Router("t")
    calls = 0

    @router.on_event(
        Sns(topic, endpoint_url=moto, wait_time_seconds=1),
        max_retries=1,
        retry_delays=(0.05,),
        on_failure=to_queue("failed"),
    )
    async def on_order(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("down")

    async with run_router(router) as app:
        sns.publish(TopicArn=topic, Message="hello")
        (record,) = await app.wait_records(1, "on_order", "on_failure")
    assert calls == 2
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    check_event("sns", record["requestPayload"])
    assert record["requestPayload"]["Records"][0]["Sns"]["Message"] == "hello"


def test_kill_9_after_the_notification_left_its_queue_loses_nothing(
    moto: str, tmp_path: Path
) -> None:
    sns, sqs = client("sns", moto), client("sqs", moto)
    topic = sns.create_topic(Name=unique("orders"))["TopicArn"]
    name = unique("orders-q")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["QueueArn"])
    out = tmp_path / "notified.log"
    env = {
        "NOTIFIED_OUT": str(out),
        "NOTIFIED_TOPIC": topic,
        "NOTIFIED_QUEUE": name,
        "NOTIFIED_ENDPOINT": moto,
    }
    target = "tests.apps.notified:router"
    sns.publish(TopicArn=topic, Message="order-1")

    def queue_empty() -> bool:
        counts = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return all(v == "0" for v in counts.values())

    first = RouterProcess(
        tmp_path / "state", tmp_path, target=target, env={**env, "NOTIFIED_HANG": "1"}
    )
    try:
        wait_until(queue_empty)  # taken off SQS: in the router's store, being handled
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert not out.exists()
    second = RouterProcess(tmp_path / "state", tmp_path, target=target, env=env)
    try:
        wait_until(lambda: out.exists() and out.read_text() == "order-1\n")
    finally:
        assert second.stop() == 0


@anyio_test
async def test_an_s3_event_is_retried_then_goes_to_on_failure() -> None:
    router = Router("t")
    calls = 0

    @router.on_event(
        S3("media", delivery="webhook", token="t"),
        max_retries=1,
        retry_delays=(0.05,),
        on_failure=to_queue("failed"),
    )
    async def resize(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("down")

    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "media"}, "object": {"key": "a.png", "size": 1, "eTag": "e"}},
    }
    async with run_router(router, http="127.0.0.1:0") as app, httpx.AsyncClient() as http:
        answer = await http.post(
            f"{app.url}/s3/resize", json={"Records": [record]}, headers={"Authorization": "t"}
        )
        assert answer.status_code == 200
        (failure,) = await app.wait_records(1, "resize", "on_failure")
    assert calls == 2
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    check_event("s3", failure["requestPayload"])


@anyio_test
async def test_s3_through_eventbridge_and_an_sqs_target_the_router_sets_up(moto: str) -> None:
    s3 = client("s3", moto)
    bucket = unique("uploads")
    s3.create_bucket(Bucket=bucket)
    router = Router("t")
    seen = Seen()

    @router.on_event(
        S3(bucket, delivery="eventbridge", prefix="in/", endpoint_url=moto, wait_time_seconds=1)
    )
    async def created(event: dict[str, Any]) -> None:
        seen.add(event)

    async with run_router(router) as app:
        s3.put_object(Bucket=bucket, Key="out/skipped.txt", Body=b"x")
        s3.put_object(Bucket=bucket, Key="in/my photo.txt", Body=b"xy")
        s3.delete_object(Bucket=bucket, Key="in/my photo.txt")  # not an ObjectCreated event
        feed = app.engine.running["created"]
        await feed.wait_until(lambda: feed.fed + feed.dropped >= 3, within=60)  # moto, loaded
        await seen.until(1)
    assert feed.fed == 1  # of the events the rule sent (3, or more from moto), one is wanted
    (event,) = seen.events
    check_event("s3-eventbridge", event)
    assert event["source"] == "aws.s3" and event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "in/my photo.txt"  # as EventBridge has it
    assert event["detail"]["bucket"]["name"] == bucket
