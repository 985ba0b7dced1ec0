"""The scheduler: fires every ``Schedule`` of a router into its function's durable queue.

Due times come from persisted state (the ledger's ``created`` and ``last_due``), never from
"now + period", so a restart neither drifts nor fires twice. One task keeps every schedule in
a heap ordered by fire time and sleeps until the first (at most :data:`MAX_SLEEP`, so a jump
of the wall clock is noticed). Fires due together are written together: one writer hands
every pending fire to the ledger in one call (one transaction with the embedded store), in
order.

Missed times are the due times that passed while the router was not running, or by more
than :data:`LATE_LIMIT` while it was (a suspended machine, a clock jumping forward); the
schedule's ``catch_up`` decides what fires of them. A clock jumping back fires nothing
twice: the ledger refuses a due time not after the last one.

Scheduler's retry policy applies when the event cannot be queued (the store fails): tried
again with a backoff of 1 s doubling to 60 s, ``max_retries`` times while younger than
``max_event_age``, then sent to ``dead_letter`` (or logged) and skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import math
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import structlog

from eventrouter.events import new_request_id
from eventrouter.store.base import function_queue

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort
    from eventrouter.sources.schedule.ledger import FireRow, Ledger
    from eventrouter.sources.schedule.source import Schedule

log = structlog.get_logger("eventrouter.schedules")

#: A due time later than this (seconds) is missed, not late.
LATE_LIMIT = 60.0
#: The longest the scheduler sleeps without looking at the wall clock again.
MAX_SLEEP = 1.0
#: Scheduler's backoff when a fire cannot be queued: 1 s doubling to this.
MAX_BACKOFF = 60.0
#: Lateness figures kept (the latest ones).
LATENESS_KEPT = 100_000


class Entry:
    """One schedule at run time."""

    __slots__ = ("anchor", "cursor", "queue", "schedule", "spec")

    def __init__(self, spec: FunctionSpec, schedule: Schedule) -> None:
        self.spec = spec
        self.schedule = schedule
        #: A rate's anchor: ``start``, else when the schedule was first seen.
        self.anchor = 0.0
        #: The last due time fired, skipped or handed to the writer.
        self.cursor = 0.0
        self.queue = function_queue(spec.name)

    def dues(self, after: float, until: float) -> Iterator[float]:
        """Due times in ``(after, until]``."""
        due = self.schedule.next_due(after, self.anchor)
        while due is not None and due <= until:
            yield due
            due = self.schedule.next_due(due, self.anchor)


class Fire:
    """One due time of one schedule, on its way to the ledger."""

    __slots__ = ("due", "entry", "failures", "payload", "request_id")

    def __init__(self, entry: Entry, due: float) -> None:
        self.entry = entry
        self.due = due
        self.payload = entry.schedule.event(due)
        self.request_id = new_request_id()
        self.failures = 0

    def row(self) -> FireRow:
        return (
            self.entry.schedule.arn,
            self.due,
            self.entry.queue,
            self.request_id,
            self.payload,
        )


class Scheduler:
    """Runs the schedules of one runtime."""

    def __init__(self, runtime: SourcePort, ledger: Ledger, specs: list[FunctionSpec]) -> None:
        self.runtime = runtime
        self.ledger = ledger
        self.entries = [Entry(spec, spec.source) for spec in specs]  # type: ignore[arg-type]
        self._by_function = {entry.spec.name: entry for entry in self.entries}
        self._heap: list[tuple[float, int, float, Entry]] = []
        self._seq = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[Fire] = []
        self._writing = False
        self._stopping = False
        self._wake = asyncio.Event()
        #: Seconds before the ``n``-th retry of a fire that could not be queued.
        self.retry_delay: Callable[[int], float] = lambda n: min(2.0 ** (n - 1), MAX_BACKOFF)
        #: The wall clock of fires' ages (tests set their own).
        self.clock: Callable[[], float] = time.time
        #: Fire times minus due times of the latest fires (lateness, benchmarks): bounded,
        #: a router may run for months.
        self.lateness: collections.deque[float] = collections.deque(maxlen=LATENESS_KEPT)

    async def prepare(self, now: float) -> None:
        """Load every schedule's state and catch up on what was missed before ``now``."""
        # One call for every schedule (one transaction with the embedded store). A new
        # schedule starts on a whole second: a rate's fires then carry the time their events
        # show (EventBridge's ``time`` has whole seconds).
        states = await self.ledger.load_many(
            [(e.schedule.arn, e.schedule.expression) for e in self.entries], float(math.ceil(now))
        )
        for entry, state in zip(self.entries, states, strict=True):
            entry.anchor = entry.schedule.anchor(state.created)
            entry.cursor = state.last_due if state.last_due is not None else state.created
            self._catch_up(entry, now)

    def tick(self, now: float) -> float | None:
        """Fire what is due at ``now``; the next fire time (``None``: nothing left)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            fire_at, _, due, entry = heapq.heappop(heap)
            if now - fire_at > LATE_LIMIT:
                self._catch_up(entry, now)  # a clock jump or a suspended machine
            else:
                self._fire(entry, due)
                self._push(entry, due)
        return heap[0][0] if heap else None

    async def settle(self) -> None:
        """Wait for the fires started so far."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await self.prepare(time.time())
        task_status.started()
        while not self._stopping:
            now = time.time()
            following = self.tick(now)
            delay = MAX_SLEEP if following is None else min(MAX_SLEEP, following - now)
            self._wake.clear()
            with anyio.move_on_after(max(delay, 0.0)):
                await self._wake.wait()
        await self.settle()

    def on_final(self, function: str, request_id: str, condition: str) -> None:
        """An asynchronous event ended: if a schedule fired it, its ledger row says how."""
        entry = self._by_function.get(function)
        if entry is not None:
            self._spawn(self.ledger.record_outcome(entry.schedule.arn, request_id, condition))

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def wait_stopped(self) -> None:
        """Nothing to wait for: the run loop settles its own writes as it ends."""

    def readings(self) -> dict[str, Any]:
        return {}

    # -- due times ----------------------------------------------------------------------------

    def _push(self, entry: Entry, after: float) -> None:
        entry.cursor = after
        due = entry.schedule.next_due(after, entry.anchor)
        if due is not None:
            heapq.heappush(self._heap, (entry.schedule.fire_at(due), next(self._seq), due, entry))

    def _catch_up(self, entry: Entry, now: float) -> None:
        """Apply ``catch_up`` to the due times missed up to ``now``, then wait for the next.

        Due times older than ``max_event_age`` never fire, whatever the mode."""
        schedule = entry.schedule
        missed = list(entry.dues(max(entry.cursor, now - schedule.max_event_age), now))
        mode = schedule.catch_up
        fire = missed if mode == "all" else missed[-1:] if mode == "latest" else []
        for due in fire:
            self._fire(entry, due)
        if len(missed) > len(fire):
            log.warning(
                "schedule missed due times",
                schedule=schedule.arn,
                catch_up=mode,
                missed=len(missed),
                fired=len(fire),
            )
            if not fire:
                self._spawn(self.ledger.skip(schedule.arn, missed[-1], f"missed ({mode})"))
        self._push(entry, max(entry.cursor, now))

    # -- firing -------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fire(self, entry: Entry, due: float) -> None:
        self._pending.append(Fire(entry, due))
        if not self._writing:
            self._writing = True
            self._spawn(self._write())

    async def _write(self) -> None:
        """Write pending fires, all of them in one ledger call, until none are left.

        One writer keeps every schedule's fires in order; a batch the ledger refuses is
        retried (Scheduler's policy, per fire) ahead of anything newer."""
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    fired = await self.ledger.fire_many([f.row() for f in batch])
                except Exception as exc:  # noqa: BLE001 - Scheduler's retry policy decides
                    await self._retry(batch, exc)
                    continue
                now = self.clock()
                metrics = self.runtime.metrics
                for fire, done in zip(batch, fired, strict=True):
                    if done:
                        self.lateness.append(now - fire.due)
                        metrics.add("ScheduleFires", fire.entry.spec.name)
        finally:
            self._writing = False

    async def _retry(self, batch: list[Fire], error: Exception) -> None:
        keep: list[Fire] = []
        now = self.clock()
        for fire in batch:
            fire.failures += 1
            schedule = fire.entry.schedule
            if fire.failures > schedule.max_retries or now - fire.due > schedule.max_event_age:
                await self._dead_letter(fire.entry, fire.due, fire.payload, error)
            else:
                keep.append(fire)
        if keep:
            log.warning("schedule fires failed, retrying", fires=len(keep), error=repr(error))
            await anyio.sleep(self.retry_delay(min(f.failures for f in keep)))
            self._pending[:0] = keep

    async def _dead_letter(
        self, entry: Entry, due: float, payload: bytes, error: BaseException
    ) -> None:
        schedule = entry.schedule
        self.runtime.metrics.add("ScheduleDeadLetters", entry.spec.name)
        if schedule.dead_letter is None:
            log.error(
                "schedule fire dropped: it could not be queued and has no dead_letter",
                schedule=schedule.arn,
                error=repr(error),
                event=payload.decode(errors="replace"),
            )
        else:
            try:
                await self.runtime.send(entry.spec, schedule.dead_letter, payload, f"{due}")
            except Exception as exc:  # noqa: BLE001 - logged whole, nothing else to do
                log.error(
                    "schedule dead-letter delivery failed",
                    schedule=schedule.arn,
                    error=repr(exc),
                    event=payload.decode(errors="replace"),
                )
        with contextlib.suppress(Exception):  # the store failed: the next start tries again
            await self.ledger.skip(schedule.arn, due, f"dead-lettered: {error!r}")
