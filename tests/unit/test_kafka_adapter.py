"""The aiokafka adapter's own logic, with a stand-in consumer."""

from __future__ import annotations

from typing import Any

import pytest

from eventrouter.sources.kafka.source import Kafka, KafkaAdapter, lambda_event

pytestmark = pytest.mark.anyio


class Hit:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class FakeConsumer:
    def __init__(self, hits: dict[str, Hit | None], ends: dict[str, int]) -> None:
        self.hits = hits
        self.ends = ends
        self.seeks: dict[str, int] = {}
        self.asked: dict[str, int] = {}

    async def offsets_for_times(self, query: dict[str, int]) -> dict[str, Hit | None]:
        self.asked.update(query)
        return {tp: self.hits[tp] for tp in query}

    async def end_offsets(self, tps: list[str]) -> dict[str, int]:
        return {tp: self.ends[tp] for tp in tps}

    def seek(self, tp: str, offset: int) -> None:
        self.seeks[tp] = offset


async def test_seek_to_timestamp_uses_the_first_offset_at_or_after_it() -> None:
    consumer = FakeConsumer({"p0": Hit(17), "p1": None}, {"p0": 40, "p1": 9})
    adapter = KafkaAdapter(Kafka("t", bootstrap_servers="x:1"), "g", 300_000, consumer=consumer)
    await adapter.seek_to_timestamp({"p0", "p1"}, 1_700_000_000.5)
    assert consumer.asked == {"p0": 1_700_000_000_500, "p1": 1_700_000_000_500}
    # No record at or after the time: start at the end, as Kafka's consumers do.
    assert consumer.seeks == {"p0": 17, "p1": 9}


def test_lambda_event_shape() -> None:
    class Raw:
        topic, partition, offset, timestamp, timestamp_type = "t", 3, 15, 1000, 0
        key, value, headers = b"k", b'{"a":1}', [("h", b"\x01\x02")]

    event: dict[str, Any] = lambda_event([Raw()], "b:9092")
    (record,) = event["records"]["t-3"]
    assert record["headers"] == [{"h": [1, 2]}]
    assert (record["key"], record["value"]) == ("aw==", "eyJhIjoxfQ==")
    assert record["timestampType"] == "CREATE_TIME"
