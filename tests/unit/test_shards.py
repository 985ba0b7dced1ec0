"""Sharded streams (Kinesis, DynamoDB Streams) on an in-memory stream with Kinesis's
resharding rules: the shard reader (discovery, parents before children, checkpoints) and
the stream policy's lanes and tumbling windows. moto runs the same code in
tests/integration/test_kinesis.py."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import msgspec
import pytest

from eventrouter import ConfigError, Context, Kinesis, Router, to_queue
from eventrouter.sources.shards.reader import ShardReader
from eventrouter.testing import MemoryKinesis, run_router
from tests.progress import Progress

pytestmark = pytest.mark.anyio

FAST = {"retry_backoff": (0.0, 0.0), "poll_interval": 0.01, "discovery_interval": 0.05}


class Click(msgspec.Struct):
    n: int
    key: str = ""
    bad: bool = False


def reader(app: Any, i: int = 0) -> ShardReader:
    adapter = app.engine.streams[i].adapter
    assert isinstance(adapter, ShardReader)
    return adapter


async def done_through(app: Any, sequence: str, shard: str = "shardId-000000000000") -> None:
    """Wait until the checkpoint of ``shard`` has passed ``sequence``."""
    r = reader(app)
    await r.wait_until(lambda: shard in r.reading and r.reading[shard].checkpoint == sequence)


async def checkpoints(app: Any, function: str, stream: str) -> dict[str, tuple[Any, ...]]:
    """What the embedded store holds for ``function`` reading ``stream``."""
    rows = await app.engine.store.transact(
        lambda c: c.execute(
            "SELECT shard, sequence, finished, window FROM shard_checkpoints WHERE consumer = ?",
            (f"{function}|{stream}",),
        ).fetchall()
    )
    return {shard: (seq, bool(finished), window) for shard, seq, finished, window in rows}


async def test_order_per_key_with_parallelization_and_the_checkpoint_waits_for_the_slowest(
    tmp_path: Any,
) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", batch_size=5, parallelization_factor=4, **FAST)
    seen: dict[str, list[int]] = {}
    in_flight = 0
    most = 0
    hold = asyncio.Event()
    progress = Progress(within=10)

    @router.on_event(stream)
    async def count(batch: list[Click], ctx: Context) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        try:
            if any(c.key == "slow" for c in batch):
                await hold.wait()
            await asyncio.sleep(0)
            for click in batch:
                seen.setdefault(click.key, []).append(click.n)
        finally:
            in_flight -= 1
            progress.note()

    stream.put({"n": 0, "key": "slow"}, key="slow")
    keys = [f"user-{k}" for k in range(12)]
    for n in range(1, 241):
        key = keys[n % len(keys)]
        stream.put({"n": n, "key": key}, key=key)
    async with run_router(router) as app:
        r = reader(app)
        # Keys of the other lanes go on while "slow" holds its lane (each of 12 keys is in
        # another lane with probability 3/4); the checkpoint stays below the slow record.
        await progress.until(lambda: sum(map(len, seen.values())) >= 40)
        assert "slow" not in seen
        stored = await checkpoints(app, "count", "clicks")
        assert stored.get("shardId-000000000000", (None,))[0] is None
        hold.set()
        last = stream.state.shards_by_id["shardId-000000000000"].records[-1].sequence
        await r.wait_until(lambda: r.reading["shardId-000000000000"].checkpoint == last)
    assert most > 1  # lanes ran at once
    for key, ns in seen.items():
        assert ns == sorted(ns), key  # one key, one lane, in order
    assert sorted(n for ns in seen.values() for n in ns) == list(range(241))


async def test_a_split_and_a_merge_children_after_parents_nothing_skipped_or_repeated(
    tmp_path: Any,
) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", batch_size=3, **FAST)
    delivered: list[tuple[str, int]] = []

    @router.on_event(stream)
    async def count(batch: list[Click], ctx: Context) -> None:
        delivered.extend((r.shard_id, c.n) for r, c in zip(ctx.records, batch, strict=True))

    state = stream.state
    for n in range(10):
        stream.put({"n": n}, key=f"k{n}")
    async with run_router(router) as app:
        r = reader(app)
        await r.wait_until(lambda: len(delivered) >= 4)  # consuming the parent
        a, b = state.split("shardId-000000000000")
        for n in range(10, 20):
            state.put({"n": n}, key=f"k{n}", shard=a if n % 2 else b)
        await r.wait_until(lambda: len(delivered) >= 16)
        child = state.merge(a, b)
        for n in range(20, 30):
            state.put({"n": n}, key=f"k{n}")
        await r.wait_until(lambda: len(delivered) == 30 and child in r.reading)
        await r.wait_until(lambda: r.reading[child].checkpoint is not None)
        stored = await checkpoints(app, "count", "clicks")
    assert sorted(n for _, n in delivered) == list(range(30))  # each once
    order = [shard for shard, _ in delivered]
    parent_done = max(i for i, s in enumerate(order) if s == "shardId-000000000000")
    assert min(i for i, s in enumerate(order) if s in (a, b)) > parent_done
    assert min(i for i, s in enumerate(order) if s == child) > max(
        i for i, s in enumerate(order) if s in (a, b)
    )
    assert stored["shardId-000000000000"][1] and stored[a][1] and stored[b][1]
    assert not stored[child][1]


async def test_a_restart_resumes_after_the_checkpoint(tmp_path: Any) -> None:
    stream = MemoryKinesis("clicks", batch_size=4, **FAST)
    seen: list[int] = []

    def build() -> Router:
        router = Router("t")

        @router.on_event(stream)
        async def count(batch: list[Click]) -> None:
            seen.extend(c.n for c in batch)

        return router

    for n in range(6):
        stream.put({"n": n}, key="k")
    async with run_router(build(), state_dir=tmp_path) as app:
        r = reader(app)
        await r.wait_until(lambda: r.reading["shardId-000000000000"].checkpoint is not None)
        await r.wait_until(lambda: len(seen) == 6)
    for n in range(6, 9):
        stream.put({"n": n}, key="k")
    async with run_router(build(), state_dir=tmp_path) as app:
        await reader(app).wait_until(lambda: len(seen) == 9)
    assert seen == list(range(9))


async def test_partial_batch_response_restarts_at_the_listed_sequence_number(
    tmp_path: Any,
) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", batch_size=5, report_batch_item_failures=True, **FAST)
    calls: list[list[int]] = []
    failed_once: set[int] = set()

    @router.on_event(stream)
    async def count(batch: list[Click], ctx: Context) -> dict[str, Any]:
        calls.append([c.n for c in batch])
        for record, click in zip(ctx.records, batch, strict=True):
            if click.bad and click.n not in failed_once:
                failed_once.add(click.n)
                return {"batchItemFailures": [{"itemIdentifier": record.sequence_number}]}
        return {"batchItemFailures": []}

    for n in range(5):
        stream.put({"n": n, "bad": n == 2}, key="k")
    async with run_router(router) as app:
        await reader(app).wait_until(lambda: len(calls) == 2)
    assert calls == [[0, 1, 2, 3, 4], [2, 3, 4]]


async def test_bisect_and_max_retries_end_in_a_kinesis_failure_record(tmp_path: Any) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", batch_size=4, bisect_on_error=True, max_retries=1, **FAST)
    ok: list[int] = []

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def count(batch: list[Click]) -> None:
        if any(c.bad for c in batch):
            raise ValueError("poison")
        ok.extend(c.n for c in batch)

    sequences = [stream.put({"n": n, "bad": n == 2}, key="k") for n in range(4)]
    async with run_router(router) as app:
        await done_through(app, sequences[-1])
        records = await app.queue_messages("failed")
    assert ok == [0, 1, 3]
    (record,) = records
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = record["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000"
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequences[2],) * 2
    assert info["batchSize"] == 1
    assert info["streamArn"].endswith(":stream/clicks")
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")


async def test_max_record_age_sends_old_records_to_on_failure(tmp_path: Any) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", batch_size=10, max_record_age=60, **FAST)
    calls = 0

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def count(batch: list[Click]) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("down")

    last = stream.put({"n": 0}, key="k", age=120)
    async with run_router(router) as app:
        await done_through(app, last)
        (record,) = await app.queue_messages("failed")
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert calls == 1


async def test_a_record_that_is_not_json_goes_to_on_failure_and_the_shard_moves_on(
    tmp_path: Any,
) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", **FAST)
    ok: list[int] = []

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def count(batch: list[Click]) -> None:
        ok.extend(c.n for c in batch)

    stream.put(b"\x00 not json", key="k")
    last = stream.put({"n": 1}, key="k")
    async with run_router(router) as app:
        await done_through(app, last)
        (record,) = await app.queue_messages("failed")
    assert ok == [1]
    assert record["requestContext"]["condition"] == "InvalidPayload"
    assert record["KinesisBatchInfo"]["batchSize"] == 1


async def test_tumbling_windows_carry_state_and_flag_the_final_invocation(tmp_path: Any) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", batch_size=2, tumbling_window=60, **FAST)
    events: list[dict[str, Any]] = []

    @router.on_event(stream)
    async def count(event: dict[str, Any], ctx: Context) -> dict[str, Any]:
        events.append(event)
        total = event["state"].get("total", 0) + len(event["Records"])
        return {"state": {"total": total}}

    # Three records in a window long over (arrivals 10 minutes ago), then one now.
    for n in range(3):
        stream.put({"n": n}, key="k", age=600)
    stream.put({"n": 3}, key="k")
    async with run_router(router) as app:
        r = reader(app)
        await r.wait_until(lambda: len(events) >= 4)
        stored = await checkpoints(app, "count", "clicks")
    first, second, final, current = events[:4]
    assert [len(e["Records"]) for e in (first, second)] == [2, 1]
    assert first["state"] == {} and second["state"] == {"total": 2}
    assert final["isFinalInvokeForWindow"] and not final["isWindowTerminatedEarly"]
    assert final["Records"] == [] and final["state"] == {"total": 3}
    assert final["window"] == first["window"] != current["window"]
    assert current["state"] == {} and not current["isFinalInvokeForWindow"]
    assert current["shardId"] == "shardId-000000000000"
    assert current["eventSourceARN"].endswith(":stream/clicks")
    # The open window is stored with the checkpoint.
    window = stored["shardId-000000000000"][2]
    assert msgspec.json.decode(window)[1] == {"total": 1}


async def test_the_window_state_survives_a_restart(tmp_path: Any) -> None:
    stream = MemoryKinesis("clicks", tumbling_window=900, **FAST)
    events: list[dict[str, Any]] = []

    def build() -> Router:
        router = Router("t")

        @router.on_event(stream)
        async def count(event: dict[str, Any]) -> dict[str, Any]:
            events.append(event)
            return {"state": {"total": event["state"].get("total", 0) + len(event["Records"])}}

        return router

    stream.put({"n": 0}, key="k")
    async with run_router(build(), state_dir=tmp_path) as app:
        r = reader(app)
        await r.wait_until(lambda: r.reading["shardId-000000000000"].checkpoint is not None)
    stream.put({"n": 1}, key="k")
    async with run_router(build(), state_dir=tmp_path) as app:
        await reader(app).wait_until(lambda: len(events) >= 2)
    # Carried across the restart (to the next invocation of the window, or to its final one
    # if the window ended meanwhile).
    assert events[1]["state"] == {"total": 1}


async def test_a_response_without_state_is_a_failure(tmp_path: Any) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", tumbling_window=900, max_retries=0, **FAST)

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def count(event: dict[str, Any]) -> None:
        return None

    last = stream.put({"n": 0}, key="k")
    async with run_router(router) as app:
        await done_through(app, last)
        (record,) = await app.queue_messages("failed")
    assert record["responsePayload"]["errorType"] == "TumblingWindowStateMissing"


def test_settings_have_lambdas_ranges() -> None:
    for bad in (
        {"batch_size": 10_001},
        {"batching_window": 301},
        {"parallelization_factor": 11},
        {"parallelization_factor": 0},
        {"max_retries": 10_001},
        {"max_record_age": 59},
        {"tumbling_window": 901},
        {"tumbling_window": 60, "parallelization_factor": 2},
        {"starting_position": "EARLIEST"},
        {"starting_position": "AT_TIMESTAMP"},
    ):
        with pytest.raises(ConfigError):
            Kinesis("clicks", **bad)
    Kinesis("clicks", max_retries=-1, max_record_age=-1, parallelization_factor=10)


async def test_tumbling_windows_need_the_raw_form(tmp_path: Any) -> None:
    router = Router("t")

    @router.on_event(MemoryKinesis("clicks", tumbling_window=60, **FAST))
    async def count(batch: list[Click]) -> None: ...

    with pytest.raises(ConfigError, match="tumbling_window needs the raw event form"):
        async with run_router(router):
            pass


async def test_iterator_age_and_millis_behind_per_shard(tmp_path: Any) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", shards=2, **FAST)
    progress = Progress(within=10)
    seen: list[int] = []

    @router.on_event(stream)
    async def count(batch: list[Click]) -> None:
        seen.extend(c.n for c in batch)
        progress.note()

    stream.put({"n": 0}, key="k", shard="shardId-000000000000", age=5.0)
    async with run_router(router) as app:
        await progress.until(lambda: seen == [0])
        policy = app.engine.streams[0]
        policy.update_lag()
    assert policy.iterator_age["shardId-000000000000"] >= 5000
    assert "shardId-000000000001" not in policy.iterator_age  # nothing read there yet
    assert policy.behind == {"shardId-000000000000": 0, "shardId-000000000001": 0}
    assert policy.lag == {}  # no record count for shards: Kafka's figure


async def test_no_permission_to_read_the_stream_is_a_clear_error() -> None:
    from botocore.exceptions import ClientError

    from eventrouter import SourceError
    from eventrouter.sources.kinesis.source import KinesisTransport

    class Denied:
        async def describe_stream_summary(self, **_: Any) -> Any:
            raise ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                "DescribeStreamSummary",
            )

    class Clients:
        async def aws(self, *_: Any) -> Any:
            return Denied()

    transport = KinesisTransport(Kinesis("clicks"), Clients())  # type: ignore[arg-type]
    with pytest.raises(SourceError, match=r"Kinesis\('clicks'\): cannot read the stream "):
        await transport.connect()


async def test_read_errors_are_retried_and_the_shard_goes_on(tmp_path: Any) -> None:
    router = Router("t")
    stream = MemoryKinesis("clicks", **FAST)
    state = stream.state
    real_read = state.read
    failures = 2

    async def flaky(shard: str, iterator: str, limit: int) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("throttled")
        return await real_read(shard, iterator, limit)

    state.read = flaky  # type: ignore[method-assign]
    seen: list[int] = []
    progress = Progress(within=10)

    @router.on_event(stream)
    async def count(batch: list[Click]) -> None:
        seen.extend(c.n for c in batch)
        progress.note()

    for n in range(3):
        stream.put({"n": n}, key="k")
    async with run_router(router):
        await progress.until(lambda: seen == [0, 1, 2], within=15)
    assert failures == 0


class _GatedShards:
    """A MemoryKinesis transport whose reads wait at a gate the test opens and closes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.open = asyncio.Event()
        self.open.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self, shard: str, iterator: str, limit: int) -> Any:
        await self.open.wait()
        return await self.inner.read(shard, iterator, limit)


class GatedKinesis(MemoryKinesis, frozen=True, dict=True):
    @property
    def gate(self) -> _GatedShards:
        if "_gate" not in self.__dict__:
            self.__dict__["_gate"] = _GatedShards(self.state)
        gate: _GatedShards = self.__dict__["_gate"]
        return gate

    def transport(self, runtime: Any) -> Any:
        return self.gate


async def test_a_window_closes_only_once_its_shard_was_read_past_its_end() -> None:
    """A record that arrived in a window's last 100 ms, read after the window's end passed on
    the clock, belongs to that window: one final invocation holding all its records."""
    size = 2.0
    stream = GatedKinesis("late", tumbling_window=size, **FAST)
    router = Router("t")
    events: list[dict[str, Any]] = []
    arrivals: dict[int, int] = {}

    @router.on_event(stream)
    async def count(event: dict[str, Any]) -> dict[str, Any]:
        events.append(event)
        return {"state": {"n": event["state"].get("n", 0) + len(event["Records"])}}

    def window_start(n: int) -> int:
        return arrivals[n] - arrivals[n] % int(size * 1000)

    def start(event: dict[str, Any]) -> int:
        iso = event["window"]["start"]
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)

    def put(n: int) -> None:
        stream.put({"n": n}, key="k")
        arrivals[n] = stream.state.shards_by_id["shardId-000000000000"].records[-1].timestamp

    async with run_router(router) as app:
        wait = reader(app).wait_until
        # At the start of a window: one record, read and invoked at once.
        await asyncio.sleep(size - time.time() % size + 0.05)
        put(0)
        await wait(lambda: len(events) >= 1)
        # Reads stall (a shard is read about once a second); a record arrives in the
        # window's last 100 ms; the window's end passes on the clock.
        stream.gate.open.clear()
        await asyncio.sleep(max(0.0, size - (time.time() % size) - 0.1))
        put(1)
        await asyncio.sleep(size - (time.time() % size) + 0.2)
        stream.gate.open.set()
        put(2)  # a record of the next window: windows close in order, so once its final
        # invocation ran, any second one of the first window would have run before it.
        last = window_start(2)
        await wait(lambda: any(e["isFinalInvokeForWindow"] and start(e) == last for e in events))
    finals = [e for e in events if e["isFinalInvokeForWindow"]]
    by_window: dict[str, list[dict[str, Any]]] = {}
    for e in finals:
        by_window.setdefault(e["window"]["start"], []).append(e)
    assert all(len(f) == 1 for f in by_window.values()), finals  # one final per window
    window_of = {n: ms - ms % int(size * 1000) for n, ms in arrivals.items()}
    first = finals[0]
    expected = sum(1 for n in (0, 1) if window_of[n] == window_of[0])
    assert first["state"] == {"n": expected}, (first, window_of)
