"""The SQLite queue: durability, leases shared by many consumers, group commit."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import anyio
import anyio.abc
import pytest

from eventrouter.store import EventStore

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def open_store(path: Path, consumer: bool = True) -> EventStore:
    store = EventStore(path, consumer=consumer)
    await store.open()
    return store


async def test_enqueue_claim_ack(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        await store.enqueue("q", "r1", b"1")
        await store.enqueue("q", "r2", b"2")
        await store.enqueue("other", "r3", b"3")
        claimed = await store.claim([(["q"], 10)])
        assert [(e.request_id, e.payload, e.attempts) for e in claimed] == [
            ("r1", b"1", 0),
            ("r2", b"2", 0),
        ]
        assert await store.claim([(["q"], 10)]) == []  # leased
        store.ack(claimed[0])
        store.reschedule(claimed[1], time.time() - 1, attempts=1, throttles=0)
        (again,) = await store.claim([(["q"], 10)])
        assert (again.request_id, again.attempts) == ("r2", 1)
        assert await store.count() == 2
    finally:
        await store.close()


async def test_claim_respects_limits_and_due_time(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        for i in range(5):
            await store.enqueue("q", f"r{i}", b"0")
        first = await store.claim([(["q"], 2)])
        assert [e.request_id for e in first] == ["r0", "r1"]
        store.reschedule(first[0], time.time() + 60, attempts=1, throttles=0)
        rest = await store.claim([(["q"], 10)])
        assert [e.request_id for e in rest] == ["r2", "r3", "r4"]
    finally:
        await store.close()


async def test_concurrent_enqueues_share_commits(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        async with anyio.create_task_group() as tg:
            for i in range(500):
                tg.start_soon(store.enqueue, "q", f"r{i}", b"{}")
        assert await store.count("q") == 500
    finally:
        await store.close()


CRASHING_CONSUMER = """
import asyncio, os, sys
from eventrouter.store import EventStore

async def main():
    store = EventStore(sys.argv[1], consumer=True)
    await store.open()
    print(len(await store.claim([(["q"], 10)])), flush=True)
    os._exit(0)  # as kill -9: no close, the lease stays on disk with its owner

asyncio.run(main())
"""


async def test_leases_of_a_consumer_that_died_return_at_once(tmp_path: Path) -> None:
    producer = await open_store(tmp_path, consumer=False)
    await producer.enqueue("q", "r1", b"1")
    await producer.close()
    done = await anyio.run_process(
        [sys.executable, "-c", CRASHING_CONSUMER, str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.stdout.strip() == b"1"  # it took the event, and died with its lease
    store = await open_store(tmp_path)  # the lease is an hour long: returned at once anyway
    try:
        (event,) = await store.claim([(["q"], 10)])
        assert event.request_id == "r1"
    finally:
        await store.close()


async def test_a_clean_close_returns_what_it_held(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    await store.enqueue("q", "r1", b"1")
    assert len(await store.claim([(["q"], 10)])) == 1
    await store.close()
    other = await open_store(tmp_path)
    try:
        assert [e.request_id for e in await other.claim([(["q"], 10)])] == ["r1"]
    finally:
        await other.close()


async def test_many_consumers_share_a_state_dir(tmp_path: Path) -> None:
    """Each claim leases in its own transaction: two consumers never hold one event, and an
    event whose lease passed is free for another consumer."""
    first, second = await open_store(tmp_path), await open_store(tmp_path)
    try:
        for i in range(100):
            await first.enqueue("q", f"r{i}", b"{}")
        taken: list[str] = []
        async with anyio.create_task_group() as tg:

            async def drain(store: EventStore) -> None:
                while events := await store.claim([(["q"], 7)]):
                    taken.extend(e.request_id for e in events)
                    for event in events:
                        store.ack(event)

            tg.start_soon(drain, first)
            tg.start_soon(drain, second)
        assert sorted(taken) == sorted(f"r{i}" for i in range(100))  # each exactly once
        assert await first.count() == 0
        producer = await open_store(tmp_path, consumer=False)
        await producer.enqueue("q", "late", b"{}")
        await producer.close()
    finally:
        await first.close()
        await second.close()
    short = EventStore(tmp_path, consumer=True, lease_seconds=0)  # every lease already over
    await short.open()
    other = await open_store(tmp_path)
    try:
        assert [e.request_id for e in await short.claim([(["q"], 10)])] == ["late"]
        assert [e.request_id for e in await other.claim([(["q"], 10)])] == ["late"]
        assert await other.claim([(["q"], 10)]) == []  # other's lease has not passed
    finally:
        await short.close()
        await other.close()


async def test_held_record_and_pop(tmp_path: Path) -> None:
    store = await open_store(tmp_path)
    try:
        await store.enqueue("q", "r1", b"1")
        (event,) = await store.claim([(["q"], 10)])
        store.hold_record(event, b'{"r": 1}', "on_failure", time.time() - 1, deliveries=1)
        (held,) = await store.claim([(["q"], 10)])
        assert (held.record, held.record_kind, held.throttles) == (b'{"r": 1}', "on_failure", 1)
        await store.enqueue("named", "m1", b'"a"')
        await store.enqueue("named", "m2", b'"b"')
        assert [e.payload for e in await store.pop("named")] == [b'"a"', b'"b"']
        assert await store.count("named") == 0
    finally:
        await store.close()


async def test_state_dir_permissions(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "state")
    await store.close()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "state" / "queue.db").stat().st_mode) == 0o600


async def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):
        await open_store(tmp_path / "file" / "state")


async def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    from eventrouter import SourceError

    (tmp_path / "queue.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(SourceError, match="cannot open the queue"):
        await open_store(tmp_path)
    # The consumer lock was given back.
    (tmp_path / "queue.db").unlink()
    store = await open_store(tmp_path)
    await store.close()


async def test_producers_open_while_the_consumer_commits(tmp_path: Path) -> None:
    """Producers opening the queue while the consumer is busy committing all succeed."""
    import sys

    code = (
        "import anyio, sys\n"
        "from eventrouter.store import EventStore\n"
        "async def main():\n"
        "    s = EventStore(sys.argv[1], consumer=False)\n"
        "    await s.open()\n"
        "    await s.enqueue('q', sys.argv[2], b'{}')\n"
        "    await s.close()\n"
        "anyio.run(main)\n"
    )
    consumer = await open_store(tmp_path)
    try:
        stop = anyio.Event()

        async def keep_committing() -> None:
            n = 0
            while not stop.is_set():
                await consumer.enqueue("busy", f"b{n}", b"{}")
                (event,) = await consumer.claim([(["busy"], 1)])
                consumer.ack(event)
                n += 1

        results: list[anyio.abc.Process] = []

        async def produce(i: int) -> None:
            results.append(
                await anyio.run_process(
                    [sys.executable, "-c", code, str(tmp_path), f"p{i}"], check=False
                )
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep_committing)
            async with anyio.create_task_group() as producers:
                for i in range(8):
                    producers.start_soon(produce, i)
            stop.set()
        assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results]
        assert await consumer.count("q") == 8
    finally:
        await consumer.close()
