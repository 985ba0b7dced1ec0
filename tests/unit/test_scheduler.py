"""The scheduler with an injected clock: catch-up modes, clock jumps, fire-once, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventrouter import Router, Schedule
from eventrouter.observability.metrics import Metrics
from eventrouter.sources.schedule.ledger import SqliteLedger
from eventrouter.sources.schedule.scheduler import LATE_LIMIT, Scheduler
from eventrouter.store.sqlite import EventStore
from tests.lambda_models import check_event

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()


class FakeRuntime:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.sent: list[tuple[str, Any, bytes]] = []

    async def send(self, spec: Any, destination: Any, record: bytes, key: str) -> None:
        self.sent.append((spec.name, destination, record))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EventStore]:
    store = EventStore(tmp_path, consumer=False)
    await store.open()
    yield store
    await store.close()


def make(store: EventStore, schedule: Schedule, runtime: Any = None) -> Scheduler:
    router = Router("t")

    @router.on_event(schedule, name="job")
    def job(event: Any) -> None: ...

    return Scheduler(runtime or FakeRuntime(), SqliteLedger(store), [router.functions["job"]])


async def fired(store: EventStore) -> list[dict[str, Any]]:
    return [msgspec.json.decode(e.payload) for e in await store.pop("fn:job", 10_000)]


def times(events: list[dict[str, Any]]) -> list[str]:
    return [e["time"][11:19] for e in events]


async def run_until(scheduler: Scheduler, now: float, until: float, step: float = 1.0) -> None:
    while now <= until:
        scheduler.tick(now)
        now += step
    await scheduler.settle()


async def test_rate_fires_each_due_time_once_with_the_scheduled_event(store: EventStore) -> None:
    s = make(store, Schedule("rate(1 minute)"))
    await s.prepare(T0)
    await run_until(s, T0, T0 + 180)
    events = await fired(store)
    assert times(events) == ["12:01:00", "12:02:00", "12:03:00"]
    for event in events:
        check_event("eventbridge", event)
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["resources"] == [Schedule("rate(1 minute)", name="job").arn]
        assert event["detail"] == {}
    # The same due times again (a tick repeated, a second scheduler on the same state): none.
    await run_until(s, T0 + 170, T0 + 180)
    again = make(store, Schedule("rate(1 minute)"))
    await again.prepare(T0 + 180)
    await run_until(again, T0 + 180, T0 + 200)
    assert await fired(store) == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", []),
        ("latest", ["12:05:00"]),
        ("all", ["12:02:00", "12:03:00", "12:04:00", "12:05:00"]),
    ],
)
async def test_catch_up_after_a_restart(store: EventStore, mode: str, expected: list[str]) -> None:
    first = make(store, Schedule("rate(1 minute)", catch_up=mode))  # type: ignore[arg-type]
    await first.prepare(T0)
    await run_until(first, T0, T0 + 90)
    assert times(await fired(store)) == ["12:01:00"]
    # Down from 12:01:30 to 12:05:30: 12:02 .. 12:05 were missed.
    second = make(store, Schedule("rate(1 minute)", catch_up=mode))  # type: ignore[arg-type]
    await second.prepare(T0 + 330)
    await run_until(second, T0 + 330, T0 + 370)
    assert times(await fired(store)) == [*expected, "12:06:00"]


async def test_all_stops_at_the_maximum_event_age(store: EventStore) -> None:
    first = make(store, Schedule("rate(1 minute)", catch_up="all", max_event_age=120))
    await first.prepare(T0)
    await run_until(first, T0, T0 + 61)
    await fired(store)
    second = make(store, Schedule("rate(1 minute)", catch_up="all", max_event_age=120))
    await second.prepare(T0 + 600)
    await second.settle()
    # 12:08 is exactly 120 s old at 12:10: not younger than the maximum age.
    assert times(await fired(store)) == ["12:09:00", "12:10:00"]


async def test_clock_jumps(store: EventStore) -> None:
    s = make(store, Schedule("rate(1 minute)", catch_up="latest"))
    await s.prepare(T0)
    await run_until(s, T0, T0 + 125)
    assert times(await fired(store)) == ["12:01:00", "12:02:00"]
    # Back by an hour: nothing fires twice, and nothing fires until the clock is past 12:03.
    await run_until(s, T0 - 3600, T0 - 3600 + 125)
    await run_until(s, T0 + 126, T0 + 185)
    assert times(await fired(store)) == ["12:03:00"]
    # Forward by an hour (a suspended machine): the missed hour is caught up as "latest" says.
    s.tick(T0 + 186 + 3600)
    await s.settle()
    assert times(await fired(store)) == ["13:03:00"]
    assert LATE_LIMIT < 3600


async def test_cron_in_a_time_zone_and_its_envelope_time(store: EventStore) -> None:
    s = make(store, Schedule("cron(0 2 * * ? *)", timezone="Europe/Paris"))
    await s.prepare(T0)
    await run_until(s, T0, T0 + 2 * 86_400, step=600)
    events = await fired(store)
    # 02:00 in Paris in December is 01:00 UTC; the event's time is the scheduled time.
    assert [e["time"] for e in events] == ["2026-12-04T01:00:00Z", "2026-12-05T01:00:00Z"]


async def test_input_replaces_the_envelope_and_at_fires_once(store: EventStore) -> None:
    s = make(store, Schedule("at(2026-12-03T12:00:30)", input={"report": "hourly"}))
    await s.prepare(T0)
    await run_until(s, T0, T0 + 600)
    assert await fired(store) == [{"report": "hourly"}]


async def test_flexible_window_spreads_fires_the_same_way_every_time(store: EventStore) -> None:
    schedule = Schedule("rate(1 hour)", flexible_window=600, name="job")
    offsets = [schedule.fire_at(T0 + h * 3600) - (T0 + h * 3600) for h in range(50)]
    assert all(0 <= o < 600 for o in offsets)
    assert len({round(o) for o in offsets}) > 25  # spread, not one fixed delay
    assert offsets == [schedule.fire_at(T0 + h * 3600) - (T0 + h * 3600) for h in range(50)]
    s = make(store, Schedule("rate(1 hour)", flexible_window=600))
    await s.prepare(T0)
    first_due = T0 + 3600
    fire_at = schedule.fire_at(first_due)
    await run_until(s, T0, fire_at - 0.5, step=0.25)
    assert await fired(store) == []
    await run_until(s, fire_at, fire_at)
    assert times(await fired(store)) == ["13:00:00"]


async def test_start_and_end_bound_the_fires(store: EventStore) -> None:
    s = make(store, Schedule("rate(1 minute)", start=T0 + 120, end=T0 + 240))
    await s.prepare(T0)
    await run_until(s, T0, T0 + 600)
    assert times(await fired(store)) == ["12:02:00", "12:03:00", "12:04:00"]


class FailingLedger(SqliteLedger):
    def __init__(self, store: EventStore, failures: int) -> None:
        super().__init__(store)
        self.failures = failures

    async def fire_many(self, *args: Any) -> list[bool]:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        return await super().fire_many(*args)


async def test_retry_policy_then_dead_letter(store: EventStore) -> None:
    from eventrouter import to_queue

    runtime = FakeRuntime()
    router = Router("t")

    @router.on_event(Schedule("rate(1 minute)", max_retries=2, dead_letter=to_queue("dlq")))
    def job(event: Any) -> None: ...

    for failures, expect_fired in ((2, True), (3, False)):
        ledger = FailingLedger(store, failures)
        s = Scheduler(runtime, ledger, [router.functions["job"]])
        s.retry_delay = lambda n: 0.0
        s.clock = lambda expect_fired=expect_fired: T0 + (60 if expect_fired else 120)
        await s.prepare(T0 if expect_fired else T0 + 60)
        s.tick(T0 + 60 if expect_fired else T0 + 120)
        await s.settle()
        events = await fired(store)
        if expect_fired:
            assert times(events) == ["12:01:00"] and runtime.sent == []
        else:
            assert events == []
            assert [(name, msgspec.json.decode(r)["time"]) for name, _, r in runtime.sent] == [
                ("job", "2026-12-03T12:02:00Z")
            ]
            assert runtime.metrics.get("ScheduleDeadLetters", "job") == 1
    states = await SqliteLedger(store).states()
    assert states[0].last_outcome is not None and "dead-lettered" in states[0].last_outcome


async def test_many_schedules_fire_concurrently_in_group_commits(store: EventStore) -> None:
    runtime = FakeRuntime()
    router = Router("t")
    for i in range(300):
        router.on_event(Schedule("rate(1 minute)"), name=f"job{i}")(lambda event: None)
    s = Scheduler(runtime, SqliteLedger(store), list(router.functions.values()))
    await s.prepare(T0)
    s.tick(T0 + 60)
    await asyncio.wait_for(s.settle(), 10)
    assert await store.count() == 300


async def test_the_ledger_keeps_the_last_fires_outcome(store: EventStore) -> None:
    s = make(store, Schedule("rate(1 minute)"))
    await s.prepare(T0)
    await run_until(s, T0, T0 + 120)
    (first, second) = await store.pop("fn:job", 10)
    s.on_final("job", first.request_id, "Success")  # an older fire: not the last word
    s.on_final("other", second.request_id, "Success")  # not a scheduled function
    await s.settle()
    (state,) = await SqliteLedger(store).states()
    assert state.last_outcome == f"queued {second.request_id}"
    s.on_final("job", second.request_id, "RetriesExhausted")
    await s.settle()
    (state,) = await SqliteLedger(store).states()
    assert state.last_outcome == f"RetriesExhausted {second.request_id}"
    assert state.last_due == T0 + 120
