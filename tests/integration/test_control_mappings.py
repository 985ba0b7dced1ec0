"""Event source mappings through boto3: a function's pull source listed with Lambda's fields,
disabled (no more polling: its messages stay where they are) and enabled again, its batch
size changed; for an embedded queue and an SQS queue on moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from eventrouter import Context, Queue, Router, Sqs, to_queue
from eventrouter.runtime.readings import take
from eventrouter.testing import run_router
from tests.integration.test_sqs import make_queue, send, sqs_client
from tests.services import lambda_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def queue_router(seen: list[Any], sentinel: anyio.Event) -> Router:
    router = Router("mapped")

    @router.on_event(None)
    async def feed(event: Any, ctx: Context) -> None:
        for n in event["numbers"]:
            await ctx.send(to_queue("jobs"), {"n": n})

    @router.on_event(Queue("jobs", batch_size=2))
    async def work(batch: list[Any]) -> None:
        seen.append([m["n"] for m in batch])

    @router.on_event(None)
    async def mark(event: Any) -> None:
        sentinel.set()

    return router


async def test_embedded_queue_mapping_disable_enable_and_batch_size(tmp_path: Path) -> None:
    seen: list[Any] = []
    sentinel = anyio.Event()
    state = tmp_path / "state"
    async with run_router(queue_router(seen, sentinel), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def disable() -> tuple[dict[str, Any], dict[str, Any]]:
            client = lambda_client(url)
            listed = client.list_event_source_mappings(FunctionName="work")
            (mapping,) = listed["EventSourceMappings"]
            changed = client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            client.invoke(FunctionName="feed", Payload=json.dumps({"numbers": [1, 2, 3]}))
            # Queued after the messages: once it ran, the dispatcher has claimed since they
            # were written, and would have taken them too had the mapping been enabled.
            client.invoke(FunctionName="mark", InvocationType="Event")
            return mapping, changed

        mapping, changed = await anyio.to_thread.run_sync(disable)
        with anyio.fail_after(20):
            await sentinel.wait()
        assert seen == []  # disabled: the messages wait in the queue
        readings = {f.name: f for f in (await take(app.engine)).functions}
        assert readings["work"].source == "queue:jobs batch=2 (disabled)"  # the dashboard's
        assert mapping["State"] == "Enabled" and changed["State"] == "Disabled"
        assert mapping["EventSourceArn"] == "arn:aws:eventrouter:us-east-1:000000000000:queue/jobs"
        assert mapping["BatchSize"] == 2
        assert mapping["FunctionArn"].endswith(":function:work")

        def enable() -> dict[str, Any]:
            client = lambda_client(url)
            return client.update_event_source_mapping(
                UUID=mapping["UUID"], Enabled=True, BatchSize=3
            )

        enabled = await anyio.to_thread.run_sync(enable)
        await app.drain()
    assert enabled["State"] == "Enabled" and enabled["BatchSize"] == 3
    assert seen == [[1, 2, 3]]  # one batch of the new size

    # The change is kept: after a restart the mapping is as it was left.
    async with run_router(queue_router(seen, sentinel), state_dir=state, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def get() -> tuple[dict[str, Any], str]:
            client = lambda_client(url)
            try:
                client.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
            except client.exceptions.ResourceNotFoundException as exc:
                missing = str(exc.response["Error"]["Code"])
            return client.get_event_source_mapping(UUID=mapping["UUID"]), missing

        again, missing = await anyio.to_thread.run_sync(get)
    assert (again["State"], again["BatchSize"], again["UUID"]) == ("Enabled", 3, mapping["UUID"])
    assert missing == "ResourceNotFoundException"


async def test_sqs_mapping_disabled_stops_polling(moto: str, tmp_path: Path) -> None:
    name, queue_url, _ = make_queue(moto, visibility=2)
    received: list[Any] = []
    got = anyio.Event()
    router = Router("sqs-mapped")

    @router.on_event(
        Sqs(name, endpoint_url=moto, region="us-east-1", wait_time_seconds=1), timeout=1
    )
    async def orders(event: Any) -> None:
        received.extend(json.loads(r["body"]) for r in event["Records"])
        got.set()

    async with run_router(router, state_dir=tmp_path, http="127.0.0.1:0") as app:
        url = f"http://127.0.0.1:{app.engine.http_port}"

        def disable() -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
            client = lambda_client(url)
            (mapping,) = client.list_event_source_mappings(FunctionName="orders")[
                "EventSourceMappings"
            ]
            # The queue's ARN as SQS gives it (moto's account, not the router's) finds it.
            real_arn = sqs_client(moto).get_queue_attributes(
                QueueUrl=queue_url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            assert mapping["EventSourceArn"] == real_arn and ":000000000000:" not in real_arn
            by_arn = client.list_event_source_mappings(EventSourceArn=real_arn)
            assert [m["UUID"] for m in by_arn["EventSourceMappings"]] == [mapping["UUID"]]
            changed = client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
            send(moto, queue_url, [{"n": 1}])
            # No poller is left to take it: the message is there for anyone to receive (after
            # its visibility timeout, if a long poll cancelled by the stop was still open on
            # the server and got it).
            messages = sqs_client(moto).receive_message(QueueUrl=queue_url, WaitTimeSeconds=10)
            for message in messages.get("Messages", []):
                sqs_client(moto).change_message_visibility(
                    QueueUrl=queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            return mapping, changed, messages.get("Messages", [])

        mapping, changed, messages = await anyio.to_thread.run_sync(disable)
        assert [json.loads(m["Body"]) for m in messages] == [{"n": 1}]
        assert received == []
        assert (mapping["State"], changed["State"]) == ("Enabled", "Disabled")
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 1000}
        assert changed["EventSourceArn"] == mapping["EventSourceArn"]  # known while disabled
        assert app.engine.streams == []  # the poller policy is stopped

        def enable() -> None:
            lambda_client(url).update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)

        await anyio.to_thread.run_sync(enable)
        with anyio.fail_after(30):
            await got.wait()
    assert received == [{"n": 1}]
