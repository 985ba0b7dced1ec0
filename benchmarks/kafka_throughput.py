"""Kafka: records/s for the same work four ways, against one broker in one run.

200,000 JSON records of ~100 bytes over 4 partitions (quick mode: 4,000), each consumer in a
new group from the earliest offset, decoding every value into the same msgspec Struct and
committing after processing (at least once):

1. a hand-written aiokafka ``getmany`` + decode + commit loop (the ceiling),
2. eventrouter with a no-op batch handler (``list[Click]``),
3. eventrouter with a no-op per-record handler (``Click``),
4. FastStream's Kafka subscriber (batch, ``AckPolicy.ACK``), decoding the same JSON into an
   equivalent model its own way (JSON parse + pydantic validation).

The clock runs from the first record handled to the last, so group joins are not counted.
eventrouter runs with logging at its default level (a REPORT line per batch, to a file).
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import msgspec

from benchmarks.common import summarize
from eventrouter import Kafka, Router
from eventrouter.observability.logging import configure_logging
from eventrouter.testing import run_router
from tests.kafka_broker import FAST_GROUP, create_topic, kafka_broker, produce_fast, unique

TARGETS = {"batch_vs_ceiling": 0.9, "per_record_vs_ceiling": 0.7, "batch_vs_faststream": 2.0}
PARTITIONS = 4
BATCH = 500


class Click(msgspec.Struct):
    user: str
    page: str
    ref: str
    n: int
    at: float


def payload(n: int) -> bytes:
    """About 100 bytes of JSON."""
    return msgspec.json.encode(
        Click(f"user-{n % 977:05d}", f"/products/{n % 5003:06d}", "search-results", n, 1.7e9 + n)
    )


class Clock:
    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = anyio.Event()

    def add(self, n: int) -> None:
        if self.count == 0:
            self.first = time.perf_counter()
        self.count += n
        if self.count >= self.total:
            self.last = time.perf_counter()
            self.done.set()

    def rate(self) -> float:
        return self.total / (self.last - self.first)


async def ceiling(servers: str, topic: str, total: int) -> float:
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]

    decoder = msgspec.json.Decoder(Click)
    clock = Clock(total)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers,
        group_id=unique("ceiling"),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **FAST_GROUP,
    )
    await consumer.start()
    try:
        while clock.count < total:
            data = await consumer.getmany(timeout_ms=200, max_records=BATCH * PARTITIONS)
            for records in data.values():
                for record in records:
                    decoder.decode(record.value)
            if data:
                await consumer.commit()
                clock.add(sum(len(r) for r in data.values()))
    finally:
        await consumer.stop()
    return clock.rate()


async def routed(servers: str, topic: str, total: int, per_record: bool) -> float:
    clock = Clock(total)
    router = Router("bench-kafka")
    source = Kafka(
        topic,
        group=unique("router"),
        bootstrap_servers=servers,
        batch_size=BATCH,
        batching_window=0,
        consumer_options=FAST_GROUP,
    )
    if per_record:

        @router.on_event(source)
        async def noop(click: Click) -> None:
            clock.add(1)
    else:

        @router.on_event(source)
        async def noop_batch(batch: list[Click]) -> None:
            clock.add(len(batch))

    async with run_router(router):
        await clock.done.wait()
    return clock.rate()


async def faststream(servers: str, topic: str, total: int) -> float:
    from faststream import AckPolicy
    from faststream.kafka import KafkaBroker
    from pydantic import BaseModel

    class ClickModel(BaseModel):
        user: str
        page: str
        ref: str
        n: int
        at: float

    clock = Clock(total)
    broker = KafkaBroker(servers, logger=None)

    # FastStream's own way: it parses the JSON and validates each record into the model.
    @broker.subscriber(  # type: ignore[call-overload,untyped-decorator]
        topic,
        group_id=unique("faststream"),
        auto_offset_reset="earliest",
        batch=True,
        max_records=BATCH,
        ack_policy=AckPolicy.ACK,
        **FAST_GROUP,
    )
    async def handle(clicks: list[ClickModel]) -> None:
        clock.add(len(clicks))

    await broker.start()
    try:
        await clock.done.wait()
    finally:
        await broker.stop()
    return clock.rate()


def run(quick: bool = False) -> dict[str, Any]:
    total = 4_000 if quick else 200_000
    rounds = 1 if quick else 3
    have_faststream = importlib.util.find_spec("faststream") is not None
    samples: dict[str, list[float]] = {
        "ceiling": [],
        "batch": [],
        "per_record": [],
        "faststream": [],
    }
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        with kafka_broker(Path(tmp) / "broker.log") as servers:
            topic = unique("bench")

            async def prepare() -> None:
                await create_topic(servers, topic, PARTITIONS)
                await produce_fast(
                    servers, topic, [(n % PARTITIONS, None, payload(n)) for n in range(total)]
                )

            anyio.run(prepare)
            for _ in range(rounds):  # interleaved, so that noise hits every contender alike
                samples["ceiling"].append(anyio.run(ceiling, servers, topic, total))
                samples["batch"].append(anyio.run(routed, servers, topic, total, False))
                samples["per_record"].append(anyio.run(routed, servers, topic, total, True))
                if have_faststream:
                    samples["faststream"].append(anyio.run(faststream, servers, topic, total))
    result: dict[str, Any] = {
        "records": total,
        "partitions": PARTITIONS,
        "batch_size": BATCH,
        "record_bytes": len(payload(total - 1)),
    }
    for name, values in samples.items():
        if values:
            result[name] = summarize(values)
    top = result["ceiling"]["median"]
    result["batch_vs_ceiling"] = result["batch"]["median"] / top
    result["per_record_vs_ceiling"] = result["per_record"]["median"] / top
    if have_faststream:
        result["batch_vs_faststream"] = result["batch"]["median"] / result["faststream"]["median"]
    result["targets"] = TARGETS
    return result
