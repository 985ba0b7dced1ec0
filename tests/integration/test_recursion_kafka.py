"""A function that writes to the Kafka topic it reads (through Tansu, or Apache Kafka with
``KAFKA_BOOTSTRAP_SERVERS``): the lineage travels as a record header; the batch 17 deep is
stopped and its failure record goes to on_failure, without retries or blocking the partition."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from eventrouter import Context, Kafka, Router, to_function, to_kafka
from eventrouter.lineage import LIMIT
from eventrouter.testing import run_router
from tests.kafka_broker import create_topic, unique

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_function_writing_to_the_topic_it_reads_is_stopped(kafka: str) -> None:
    topic = unique("loop")
    await create_topic(kafka, topic, 1)
    router = Router("kafka-loop")
    seen: list[int] = []
    stopped: list[Any] = []
    done = anyio.Event()
    source = Kafka(topic, group=unique("g"), bootstrap_servers=kafka, batching_window=0)

    @router.on_event(source, on_failure=to_function("failures"))
    async def echo(batch: list[dict[str, int]], ctx: Context) -> None:
        for item in batch:
            seen.append(item["n"])
            await ctx.send(to_kafka(topic, bootstrap_servers=kafka), {"n": item["n"] + 1})

    @router.on_event(None)
    async def failures(record: Any) -> None:
        stopped.append(record)
        done.set()

    @router.on_event(None)
    async def start(event: Any, ctx: Context) -> None:
        await ctx.send(to_kafka(topic, bootstrap_servers=kafka), {"n": 1})

    async with run_router(router) as app:
        await app.engine.invoke("start", {})
        with anyio.fail_after(60):
            await done.wait()
        dropped = app.engine.metrics.get("RecursiveInvocationsDropped", "echo")
    # start is depth 1; echo reads at depths 2..16; the 16th record's batch is stopped.
    assert seen == list(range(1, LIMIT))
    (record,) = stopped
    assert record["requestContext"]["condition"] == "RecursiveInvocationDetected"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert dropped == 1
