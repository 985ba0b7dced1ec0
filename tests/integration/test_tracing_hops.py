"""Traces across real transports: Kafka record headers (Tansu, or Apache Kafka) and SQS's
``AWSTraceHeader`` (moto), written by the destinations and read by the sources and the
SNS feed."""

from __future__ import annotations

import json
from typing import Any

import anyio
import boto3
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from eventrouter import Context, Kafka, Router, Sns, Sqs, to_kafka, to_sqs
from eventrouter.testing import run_router
from tests.kafka_broker import create_topic, unique

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def traced() -> tuple[Router, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Router("hops", tracing=provider), exporter


def span(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (found,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return found


async def run_hop(router: Router, exporter: InMemorySpanExporter, arrived: anyio.Event) -> None:
    """Invoke ``produce`` (which sends to the transport) and wait for ``consume``; its span
    must link the producer's trace."""
    async with run_router(router) as app:
        await app.engine.invoke("produce", {"n": 1})
        with anyio.fail_after(30):
            await arrived.wait()
    produced, consumed = span(exporter, "produce"), span(exporter, "consume")
    (link,) = consumed.links
    assert link.context.trace_id == produced.get_span_context().trace_id
    assert link.context.span_id == produced.get_span_context().span_id


async def test_kafka_record_headers_carry_the_trace(kafka: str) -> None:
    topic = unique("traced")
    await create_topic(kafka, topic, 1)
    router, exporter = traced()
    arrived = anyio.Event()
    headers: list[Any] = []

    @router.on_event(None, name="produce")
    async def produce(event: Any, ctx: Context) -> None:
        await ctx.send(to_kafka(topic, bootstrap_servers=kafka), event)

    source = Kafka(topic, group=unique("g"), bootstrap_servers=kafka, batching_window=0)

    @router.on_event(source, name="consume")
    async def consume(batch: list[dict[str, Any]], ctx: Context) -> None:
        headers.extend(ctx.records[0].headers)
        arrived.set()

    await run_hop(router, exporter, arrived)
    # Beside the trace, the depth of the invocation that wrote it (recursive loop detection).
    assert [name for name, _ in headers] == ["traceparent", "eventrouter-lineage"]
    assert headers[1][1] == b"1"


async def test_sqs_aws_trace_header_carries_the_trace(moto: str) -> None:
    name = unique("traced")
    sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")
    await anyio.to_thread.run_sync(lambda: sqs.create_queue(QueueName=name))
    router, exporter = traced()
    arrived = anyio.Event()

    @router.on_event(None, name="produce")
    async def produce(event: Any, ctx: Context) -> None:
        await ctx.send(to_sqs(name, region="us-east-1", endpoint_url=moto), event)

    source = Sqs(name, endpoint_url=moto, region="us-east-1", wait_time_seconds=1)

    @router.on_event(source, name="consume")
    async def consume(batch: list[dict[str, Any]]) -> None:
        arrived.set()

    await run_hop(router, exporter, arrived)


async def test_an_sns_notification_through_sqs_continues_the_senders_trace(moto: str) -> None:
    sns = boto3.client("sns", endpoint_url=moto, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")
    topic = sns.create_topic(Name=unique("traced"))["TopicArn"]
    queue = unique("feed")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]  # the user's, subscribed by them
    router, exporter = traced()
    arrived = anyio.Event()

    @router.on_event(Sns(topic, queue=queue, endpoint_url=moto, wait_time_seconds=1))
    async def on_note(event: dict[str, Any]) -> None:
        arrived.set()

    trace, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    envelope = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": topic,
        "Message": "{}",
        "Timestamp": "2026-12-04T07:00:00.000Z",
    }
    header = f"Root=1-{trace[:8]}-{trace[8:]};Parent={parent};Sampled=1"
    async with run_router(router):
        await anyio.to_thread.run_sync(
            lambda: sqs.send_message(
                QueueUrl=url,
                MessageBody=json.dumps(envelope),
                MessageSystemAttributes={
                    "AWSTraceHeader": {"DataType": "String", "StringValue": header}
                },
            )
        )
        with anyio.fail_after(30):
            await arrived.wait()
    context = span(exporter, "on_note")
    assert f"{context.get_span_context().trace_id:032x}" == trace
    assert context.parent is not None and f"{context.parent.span_id:016x}" == parent
