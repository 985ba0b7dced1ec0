"""The Kinesis source against moto's server: Lambda's event shapes, the handler forms, bad
input, resharding while consuming, kill -9 and restart, and two hosts sharing shard leases.

moto's resharding differs from Kinesis in one way these tests allow for: a split (and a
merge) copies the parents' records into the children again, where Kinesis leaves them in
the closed parents only. What is checked on moto is that children are read after their
parents and that every record put after the reshard arrives once; the exact "nothing
skipped or repeated" across a split and a merge is checked in tests/unit/test_shards.py on
an in-memory stream with Kinesis's rules.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest

from eventrouter import Context, Kinesis, KinesisRecord, Router, SourceError, to_sqs
from eventrouter.sources.shards.reader import ShardReader
from eventrouter.testing import run_router
from tests.kafka_broker import unique
from tests.lambda_models import check_event
from tests.processes import RouterProcess, wait_until
from tests.progress import Progress

pytestmark = [pytest.mark.integration]

FAST = {"poll_interval": 0.05, "discovery_interval": 0.3, "retry_backoff": (0.0, 0.0)}


class Click(msgspec.Struct):
    n: int


def kinesis(moto: str) -> Any:
    return boto3.client("kinesis", endpoint_url=moto, region_name="us-east-1")


def make_stream(moto: str, shards: int = 1) -> str:
    name = unique("clicks")
    client = kinesis(moto)
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name)
    return name


def put(moto: str, stream: str, ns: range, *, key: Any = None) -> None:
    client = kinesis(moto)
    for n in ns:
        client.put_record(
            StreamName=stream, Data=json.dumps({"n": n}).encode(), PartitionKey=key or f"k{n}"
        )


def reader(app: Any) -> ShardReader:
    adapter = app.engine.streams[0].adapter
    assert isinstance(adapter, ShardReader)
    return adapter


@pytest.mark.anyio
async def test_the_three_forms_and_lambdas_event(moto: str) -> None:
    stream = make_stream(moto, shards=2)
    put(moto, stream, range(6))
    router = Router("t")
    raw: list[dict[str, Any]] = []
    batches: list[tuple[list[int], list[KinesisRecord]]] = []
    single: list[int] = []
    progress = Progress(within=20)

    @router.on_event(Kinesis(stream, endpoint_url=moto, **FAST))
    async def as_event(event: dict[str, Any]) -> None:
        raw.append(event)
        progress.note()

    @router.on_event(Kinesis(stream, endpoint_url=moto, batch_size=10, **FAST))
    async def as_batch(batch: list[Click], ctx: Context) -> None:
        batches.append(([c.n for c in batch], list(ctx.records)))
        progress.note()

    @router.on_event(Kinesis(stream, endpoint_url=moto, **FAST))
    async def as_record(click: Click, ctx: Context) -> None:
        single.append(click.n)
        progress.note()

    async with run_router(router):
        await progress.until(
            lambda: (
                sum(len(e["Records"]) for e in raw) == 6
                and sum(len(b[0]) for b in batches) == 6
                and len(single) == 6
            )
        )
    for event in raw:
        parsed = check_event("kinesis", event)
        for record, model in zip(event["Records"], parsed.Records, strict=True):
            assert record["eventSource"] == "aws:kinesis"
            assert record["eventName"] == "aws:kinesis:record"
            assert record["eventSourceARN"].endswith(f":stream/{stream}")
            assert record["eventID"].startswith("shardId-")
            assert record["invokeIdentityArn"].endswith(":role/as_event")
            assert json.loads(model.kinesis.data)["n"] in range(6)
            assert base64.b64decode(record["kinesis"]["data"]) == model.kinesis.data
    assert sorted(n for ns, _ in batches for n in ns) == list(range(6))
    for ns, records in batches:
        assert [r.value.n for r in records] == ns
        assert all(r.partition_key == f"k{n}" for r, n in zip(records, ns, strict=True))
    assert sorted(single) == list(range(6))


@pytest.mark.anyio
async def test_parallelization_factor_keeps_each_partition_keys_order(moto: str) -> None:
    stream = make_stream(moto)
    client = kinesis(moto)
    client.put_records(
        StreamName=stream,
        Records=[
            {"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"user-{n % 12}"}
            for n in range(60)
        ],
    )
    router = Router("t")
    seen: dict[str, list[int]] = {}
    in_flight = most = 0
    progress = Progress(within=20)

    @router.on_event(
        Kinesis(stream, endpoint_url=moto, batch_size=2, parallelization_factor=4, **FAST)
    )
    async def count(batch: list[Click], ctx: Context) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        for record, click in zip(ctx.records, batch, strict=True):
            seen.setdefault(record.partition_key, []).append(click.n)
        in_flight -= 1
        progress.note()

    async with run_router(router):
        await progress.until(lambda: sum(map(len, seen.values())) == 60)
    assert most > 1
    for key, ns in seen.items():
        assert ns == sorted(ns) == [n for n in range(60) if f"user-{n % 12}" == key]


@pytest.mark.anyio
async def test_an_unknown_stream_is_a_clear_error(moto: str) -> None:
    router = Router("t")

    @router.on_event(Kinesis("no-such-stream", endpoint_url=moto))
    async def count(event: dict[str, Any]) -> None: ...

    with pytest.raises(
        SourceError,
        match=r"^Kinesis\('no-such-stream'\) for function 'count': no such stream "
        r"\(ResourceNotFoundException\)$",
    ):
        async with run_router(router):
            pass


@pytest.mark.anyio
async def test_a_record_that_is_not_json_goes_to_an_sqs_failure_queue(moto: str) -> None:
    stream = make_stream(moto)
    sqs = boto3.client("sqs", endpoint_url=moto, region_name="us-east-1")
    queue = sqs.create_queue(QueueName=unique("failed"))["QueueUrl"]
    kinesis(moto).put_record(StreamName=stream, Data=b"\x00\x01 not json", PartitionKey="k")
    put(moto, stream, range(1, 3), key="k")
    router = Router("t")
    ok: list[int] = []
    progress = Progress(within=20)

    @router.on_event(
        Kinesis(stream, endpoint_url=moto, **FAST), on_failure=to_sqs(queue, endpoint_url=moto)
    )
    async def count(batch: list[Click]) -> None:
        ok.extend(c.n for c in batch)
        progress.note()

    async with run_router(router):
        await progress.until(lambda: ok == [1, 2])
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "InvalidPayload"
    info = record["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["shardId"] == "shardId-000000000000"
    assert info["streamArn"].endswith(f":stream/{stream}")


@pytest.mark.anyio
@pytest.mark.parametrize("reshard", ["split", "merge"])
async def test_a_reshard_while_consuming_finishes_the_parents_then_reads_the_children(
    moto: str, reshard: str
) -> None:
    stream = make_stream(moto, shards=1 if reshard == "split" else 2)
    put(moto, stream, range(10))
    router = Router("t")
    delivered: list[tuple[str, int]] = []
    progress = Progress(within=20)

    @router.on_event(Kinesis(stream, endpoint_url=moto, batch_size=3, **FAST))
    async def count(batch: list[Click], ctx: Context) -> None:
        delivered.extend((r.shard_id, c.n) for r, c in zip(ctx.records, batch, strict=True))
        progress.note()

    client = kinesis(moto)
    async with run_router(router) as app:
        await progress.until(lambda: {n for _, n in delivered} == set(range(10)))
        r = reader(app)
        parents = sorted(r.reading)
        if reshard == "split":
            client.split_shard(
                StreamName=stream, ShardToSplit=parents[0], NewStartingHashKey=str(2**127)
            )
        else:
            client.merge_shards(
                StreamName=stream, ShardToMerge=parents[0], AdjacentShardToMerge=parents[1]
            )
        put(moto, stream, range(10, 20))
        await progress.until(lambda: len(delivered) >= 20)
        children = {s["ShardId"] for s in client.list_shards(StreamName=stream)["Shards"]}
        children -= set(parents)
        # Each parent finished (read to its end, all done), then its children were taken up.
        await r.wait_until(lambda: set(r.reading) == children)
    # moto routes records put after the reshard to the closed parents, and renumbers a split
    # parent's records: each of the 20 arrived once all the same.
    assert sorted(n for _, n in delivered) == list(range(20))


def records_of(path: Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        shard, seq, n, pid = line.split()
        out.append((shard, int(seq), int(n), int(pid)))
    return out


def test_kill_9_mid_stream_then_restart_skips_nothing(moto: str, tmp_path: Path) -> None:
    stream = make_stream(moto, shards=2)
    put(moto, stream, range(80))
    out = tmp_path / "records.log"
    env = {
        "STREAMS_OUT": str(out),
        "STREAMS_STREAM": stream,
        "STREAMS_ENDPOINT": moto,
        "STREAMS_DELAY": "0.02",
    }
    target = "tests.apps.kinesis:router"
    first = RouterProcess(tmp_path / "state", tmp_path, target=target, env=env)
    try:
        wait_until(lambda: len(records_of(out)) >= 25)
    finally:
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    second = RouterProcess(tmp_path / "state", tmp_path, target=target, env=env)
    try:
        wait_until(lambda: {n for _, _, n, _ in records_of(out)} == set(range(80)))
    finally:
        assert second.stop() == 0
    seen = records_of(out)
    restarted = [n for _, _, n, pid in seen if pid == second.proc.pid]
    # The second run resumed after a checkpoint, not from the start of the shards.
    assert len(restarted) < 80
    for shard in {s for s, _, _, _ in seen}:
        sequences = [seq for s, seq, _, _ in seen if s == shard]
        first_time = list(dict.fromkeys(sequences))
        assert first_time == sorted(first_time)  # in order per shard


def test_two_hosts_share_the_shards_and_one_takes_over_when_the_other_dies(
    moto: str, tmp_path: Path
) -> None:
    stream = make_stream(moto, shards=4)
    put(moto, stream, range(20))
    out = tmp_path / "records.log"
    env = {
        "STREAMS_OUT": str(out),
        "STREAMS_STREAM": stream,
        "STREAMS_ENDPOINT": moto,
        "STREAMS_LEASE_TABLE": unique("leases"),
        "STREAMS_LEASE_DURATION": "2",
        "STREAMS_DELAY": "0.05",
    }
    target = "tests.apps.kinesis:router"
    a = RouterProcess(tmp_path / "a", tmp_path, target=target, env=env)
    b = None
    try:
        wait_until(lambda: len(records_of(out)) >= 5)
        b = RouterProcess(tmp_path / "b", tmp_path, target=target, env=env)
        # The second host takes its share from the first, which held every shard.
        b.wait_for(lambda rs: sum(r.get("event") == "shard lease taken over" for r in rs) >= 2)
        # Shards, not records: one "partitions revoked" record may name several.
        a.wait_for(
            lambda rs: (
                sum(len(r["partitions"]) for r in rs if r.get("event") == "partitions revoked") >= 2
            )
        )
        put(moto, stream, range(20, 60))
        wait_until(lambda: {n for *_, n, _ in records_of(out)} == set(range(60)))
        pids = {pid for *_, n, pid in records_of(out) if n >= 20}
        assert pids == {a.proc.pid, b.proc.pid}  # both hosts read
        assert a.stop(signal.SIGKILL) == -signal.SIGKILL
        put(moto, stream, range(60, 100))
        # After the dead host's leases expire, the other takes its shards: nothing skipped.
        wait_until(lambda: {n for *_, n, _ in records_of(out)} == set(range(100)))
    finally:
        if a.proc.poll() is None:
            a.stop()
        if b is not None:
            assert b.stop() == 0
    late = {shard for shard, _, n, pid in records_of(out) if n >= 60}
    assert all(pid == b.proc.pid for _, _, n, pid in records_of(out) if n >= 60)
    assert len(late) == 4
