"""One contract for every store (eventrouter/store/base.py): the embedded SQLite queue and
the SQS one (on moto) answer the asynchronous policy the same way."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import boto3
import pytest

from eventrouter import Sqs
from eventrouter.store import EventStore, Store
from eventrouter.store.sqs import SqsStore
from tests.kafka_broker import unique

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", pytest.param("sqs", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = EventStore(tmp_path, consumer=True)
    else:
        moto: str = request.getfixturevalue("moto")
        name = unique("store")
        boto3.client("sqs", endpoint_url=moto, region_name="us-east-1").create_queue(QueueName=name)
        opened = SqsStore(
            Sqs(name, endpoint_url=moto, region="us-east-1"), consumer=True, lease_seconds=60
        )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_an_enqueued_event_is_claimed_once_while_leased(store: Store) -> None:
    told: list[set[str]] = []
    store.on_enqueued = told.append
    before = time.time()
    await store.enqueue("fn:a", "r1", b'{"n": 1}')
    assert told == [{"fn:a"}]
    (event,) = await store.claim([(["fn:a"], 10)])
    assert (event.queue, event.request_id, event.payload) == ("fn:a", "r1", b'{"n": 1}')
    assert (event.attempts, event.throttles, event.record) == (0, 0, None)
    assert before - 1 <= event.enqueued_at <= time.time() + 1
    assert await store.claim([(["fn:a"], 10)]) == []  # leased


async def test_an_acknowledged_event_is_gone(store: Store) -> None:
    await store.enqueue("fn:a", "r1", b"1")
    (event,) = await store.claim([(["fn:a"], 10)])
    store.ack(event)
    await store.flush()
    assert await store.claim([(["fn:a"], 10)]) == []
    assert await store.count() == 0


async def test_a_rescheduled_event_comes_back_when_due_with_its_counts(store: Store) -> None:
    await store.enqueue("fn:a", "r1", b"1")
    (event,) = await store.claim([(["fn:a"], 10)])
    store.reschedule(event, time.time() - 1, attempts=2, throttles=1)
    await store.flush()
    (again,) = await store.claim([(["fn:a"], 10)])
    assert (again.request_id, again.payload, again.attempts, again.throttles) == ("r1", b"1", 2, 1)
    assert again.enqueued_at == pytest.approx(event.enqueued_at, abs=0.01)


async def test_an_event_due_later_is_not_claimed_now(store: Store) -> None:
    await store.enqueue("fn:a", "r1", b"1")
    (event,) = await store.claim([(["fn:a"], 10)])
    store.reschedule(event, time.time() + 60, attempts=1, throttles=0)
    await store.flush()
    assert await store.claim([(["fn:a"], 10)]) == []
    assert await store.count() == 1


async def test_a_held_record_comes_back_with_the_event(store: Store) -> None:
    await store.enqueue("fn:a", "r1", b"1")
    (event,) = await store.claim([(["fn:a"], 10)])
    store.hold_record(event, b'{"record": 1}', "on_failure", time.time() - 1, deliveries=3)
    await store.flush()
    (again,) = await store.claim([(["fn:a"], 10)])
    assert (again.record, again.record_kind, again.throttles) == (
        b'{"record": 1}',
        "on_failure",
        3,
    )


async def test_claims_take_only_the_queues_asked_for_up_to_their_limits(store: Store) -> None:
    for i in range(3):
        await store.enqueue("fn:a", f"a{i}", b"1")
    await store.enqueue("fn:b", "b0", b"1")
    claimed = await store.claim([(["fn:a"], 2)])
    assert len(claimed) == 2 and {e.queue for e in claimed} == {"fn:a"}
    await store.flush()  # what was received and not taken goes back at once
    rest = await store.claim([(["fn:a"], 10), (["fn:b"], 10)])
    assert sorted(e.request_id for e in rest) == sorted(
        {"a0", "a1", "a2", "b0"} - {e.request_id for e in claimed}
    )
