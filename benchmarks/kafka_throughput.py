"""Kafka: records/s for the same work four ways, against one broker in one run.

200,000 JSON records of ~100 bytes over 4 partitions (quick mode: 4,000), each consumer in a
new group from the earliest offset, decoding every value into the same msgspec Struct and
committing after processing (at least once):

1. a hand-written aiokafka ``getmany`` + decode + commit loop (the ceiling),
2. eventrouter with a no-op batch handler (``list[Click]``),
3. eventrouter with a no-op per-record handler (``Click``),
4. FastStream's Kafka subscriber (batch, ``AckPolicy.ACK``), decoding the same JSON into an
   equivalent model its own way (JSON parse + pydantic validation),
5. Faust (``faust-streaming``, in a process of its own: it runs its own worker and loop), an
   agent taking batches of the same size, decoding into a ``faust.Record``.

The ceiling and the batch handler also run on topics of 1 and 16 partitions (same records):
how throughput grows with partitions.

The clock runs from the first record handled to the last, so group joins are not counted.
eventrouter runs with logging at its default level (a REPORT line per batch, to a file).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec

from benchmarks.common import progress, summarize
from eventrouter import Kafka, Router
from eventrouter.observability.logging import configure_logging
from eventrouter.testing import run_router
from tests.kafka_broker import FAST_GROUP, create_topic, kafka_broker, produce_fast, unique

TARGETS = {"batch_vs_ceiling": 0.9, "per_record_vs_ceiling": 0.7, "batch_vs_faststream": 2.0}
PARTITIONS = 4
#: How throughput grows with the partitions of the topic (the ceiling and the batch handler).
PARTITION_COUNTS = (1, 4, 16)
BATCH = 500
ROOT = Path(__file__).resolve().parents[1]


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


async def routed(servers: str, topic: str, total: int, *, per_record: bool) -> float:
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


async def faust(servers: str, topic: str, total: int) -> float:
    """Faust in a process of its own (it runs its own event loop and worker)."""
    proc = await anyio.open_process(
        [
            sys.executable,
            "-m",
            "benchmarks.apps.faust_consumer",
            servers,
            topic,
            str(total),
            str(BATCH),
        ],
        cwd=ROOT,
        stderr=subprocess.STDOUT,
    )
    seen = b""
    try:
        with anyio.fail_after(300):
            assert proc.stdout is not None
            async for chunk in proc.stdout:
                seen += chunk
                found = re.search(rb'"records_per_s": ([\d.e+]+)', seen)
                if found:
                    return float(found.group(1))
        raise RuntimeError(
            f"Faust exited without a result: {seen[-2000:].decode(errors='replace')}"
        )
    finally:
        proc.terminate()
        with anyio.move_on_after(10):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.aclose()


def _topic(servers: str, partitions: int, total: int) -> str:
    topic = unique(f"bench-p{partitions}")

    async def prepare() -> None:
        await create_topic(servers, topic, partitions)
        await produce_fast(
            servers, topic, [(n % partitions, None, payload(n)) for n in range(total)]
        )

    anyio.run(prepare)
    return topic


def run(quick: bool = False) -> dict[str, Any]:
    total = 4_000 if quick else 200_000
    rounds = 1 if quick else 3
    peers = {
        "faststream": importlib.util.find_spec("faststream") is not None,
        "faust": importlib.util.find_spec("faust") is not None,
    }
    contenders: dict[str, Callable[[str, str, int], Awaitable[float]]] = {
        "ceiling": ceiling,
        "batch": functools.partial(routed, per_record=False),
        "per_record": functools.partial(routed, per_record=True),
    }
    if peers["faststream"]:
        contenders["faststream"] = faststream
    if peers["faust"]:
        contenders["faust"] = faust
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    # Records/s of the ceiling and of the batch handler by partition count.
    by_partitions: dict[int, dict[str, list[float]]] = {
        n: {"ceiling": [], "batch": []} for n in PARTITION_COUNTS
    }
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        with kafka_broker(Path(tmp) / "broker.log") as servers:
            progress(
                f"Kafka: producing {total:,} records into each of {len(PARTITION_COUNTS)} topics"
            )
            topics = {n: _topic(servers, n, total) for n in PARTITION_COUNTS}
            for r in range(rounds):  # interleaved, so that noise hits every contender alike
                for name, consume in contenders.items():
                    progress(f"Kafka round {r + 1}/{rounds}: {name}, {PARTITIONS} partitions")
                    samples[name].append(anyio.run(consume, servers, topics[PARTITIONS], total))
                for n in PARTITION_COUNTS:
                    if n == PARTITIONS:
                        continue
                    progress(f"Kafka round {r + 1}/{rounds}: ceiling and batch, {n} partitions")
                    for name in ("ceiling", "batch"):
                        by_partitions[n][name].append(
                            anyio.run(contenders[name], servers, topics[n], total)
                        )
            by_partitions[PARTITIONS] = {k: samples[k] for k in ("ceiling", "batch")}
    result: dict[str, Any] = {
        "records": total,
        "partitions": PARTITIONS,
        "batch_size": BATCH,
        "record_bytes": len(payload(total - 1)),
        "peers_installed": peers,
    }
    for name, values in samples.items():
        result[name] = summarize(values)
    top = result["ceiling"]["median"]
    result["batch_vs_ceiling"] = result["batch"]["median"] / top
    result["per_record_vs_ceiling"] = result["per_record"]["median"] / top
    for peer in ("faststream", "faust"):
        if peer in result:
            result[f"batch_vs_{peer}"] = result["batch"]["median"] / result[peer]["median"]
    result["by_partitions"] = {
        str(n): {
            "ceiling": summarize(v["ceiling"]),
            "batch": summarize(v["batch"]),
            "batch_vs_ceiling": statistics.median(v["batch"]) / statistics.median(v["ceiling"]),
        }
        for n, v in sorted(by_partitions.items())
    }
    result["targets"] = TARGETS
    return result
