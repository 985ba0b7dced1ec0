"""Kinesis on moto's server: a hand-written aiobotocore ``GetRecords`` loop vs eventrouter.

Both read the same kind of stream (2 shards, JSON records) from its start, in batches of
100, decode every record's data and checkpoint each shard after each batch (the loop: an
SQLite row per shard, committed; eventrouter: its store), against the same moto server in
the same run, rounds interleaved. moto bounds the wall-clock rate, so the figure that shows
eventrouter's own cost is this process's CPU time per record.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import boto3  # type: ignore[import-untyped]

from benchmarks.common import progress, summarize
from eventrouter import Kinesis, Router
from eventrouter.observability.logging import configure_logging
from eventrouter.testing import run_router
from tests.aws_server import start_moto
from tests.kafka_broker import unique

SHARDS = 2
BATCH = 100
TARGETS = {"cpu_per_record_vs_loop": 1.2}


def fill(endpoint: str, count: int) -> str:
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    name = unique("bench")
    client.create_stream(StreamName=name, ShardCount=SHARDS)
    client.get_waiter("stream_exists").wait(StreamName=name)
    data = json.dumps({"user": "u-1", "page": "/home", "pad": "x" * 40}).encode()
    for i in range(0, count, 500):
        client.put_records(
            StreamName=name,
            Records=[
                {"Data": data, "PartitionKey": f"k{k}"} for k in range(i, min(i + 500, count))
            ],
        )
    return name


async def hand_written(endpoint: str, stream: str, total: int, db: Path) -> tuple[float, float]:
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    done = 0
    gc.collect()  # both contenders start from the same heap: no full collection pending
    start, cpu = time.perf_counter(), time.process_time()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS checkpoints (shard TEXT PRIMARY KEY, seq TEXT)")
    session = get_session()
    async with session.create_client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1"
    ) as client:
        shards = (await client.list_shards(StreamName=stream))["Shards"]

        async def read(shard: str) -> None:
            nonlocal done
            iterator = (
                await client.get_shard_iterator(
                    StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
                )
            )["ShardIterator"]
            while done < total:
                answer = await client.get_records(ShardIterator=iterator, Limit=BATCH)
                iterator = answer["NextShardIterator"]
                records = answer["Records"]
                if not records:
                    await anyio.lowlevel.checkpoint()
                    continue
                for record in records:
                    json.loads(record["Data"])
                conn.execute(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?)",
                    (shard, records[-1]["SequenceNumber"]),
                )
                conn.commit()
                done += len(records)

        async with anyio.create_task_group() as tg:
            for shard in shards:
                tg.start_soon(read, shard["ShardId"])
    conn.close()
    return total / (time.perf_counter() - start), (time.process_time() - cpu) / total


async def routed(endpoint: str, stream: str, total: int) -> tuple[float, float]:
    done = 0
    finished = anyio.Event()
    router = Router("bench-kinesis")

    @router.on_event(
        Kinesis(stream, endpoint_url=endpoint, batch_size=BATCH, poll_interval=0.0), timeout=10
    )
    async def noop(batch: list[dict[str, Any]]) -> None:
        nonlocal done
        done += len(batch)
        if done >= total:
            finished.set()

    gc.collect()  # both contenders start from the same heap: no full collection pending
    start, cpu = time.perf_counter(), time.process_time()
    async with run_router(router):
        await finished.wait()
        rate = total / (time.perf_counter() - start)
        per_record = (time.process_time() - cpu) / total
    return rate, per_record


def run(quick: bool = False) -> dict[str, Any]:
    total = 200 if quick else 4000
    rounds = 1 if quick else 3
    loop_rates, loop_cpu, our_rates, our_cpu = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "log.jsonl", "w") as log:
        configure_logging("json", "info", stream=log)
        with start_moto(Path(tmp) / "moto.log") as (endpoint, _, _):
            for r in range(rounds):
                progress(f"Kinesis round {r + 1}/{rounds}: {total} records, loop then eventrouter")
                stream = fill(endpoint, total)
                rate, cpu = anyio.run(hand_written, endpoint, stream, total, Path(tmp) / f"{r}.db")
                loop_rates.append(rate)
                loop_cpu.append(cpu)
                stream = fill(endpoint, total)
                rate, cpu = anyio.run(routed, endpoint, stream, total)
                our_rates.append(rate)
                our_cpu.append(cpu)
    result: dict[str, Any] = {
        "records": total,
        "shards": SHARDS,
        "loop_records_per_s": summarize(loop_rates),
        "eventrouter_records_per_s": summarize(our_rates),
        "loop_cpu_us_per_record": summarize([c * 1e6 for c in loop_cpu]),
        "eventrouter_cpu_us_per_record": summarize([c * 1e6 for c in our_cpu]),
        "targets": TARGETS,
    }
    result["rate_vs_loop"] = (
        result["eventrouter_records_per_s"]["median"] / result["loop_records_per_s"]["median"]
    )
    result["cpu_per_record_vs_loop"] = (
        result["eventrouter_cpu_us_per_record"]["median"]
        / result["loop_cpu_us_per_record"]["median"]
    )
    return result
