"""The asynchronous model: events from the durable queue, Lambda's retry rules, destinations.

Rules (lambda-semantics.md §1):

- A function error or timeout is retried ``max_retries`` times after ``retry_delays``.
- A throttle is not a retry: the event goes back with a backoff of 1 s doubling to 5 min.
- An event older than ``max_event_age`` is not invoked again (``EventAgeExceeded``).
- A payload that fails validation is not retried.
- The final outcome's record goes to ``on_success`` / ``on_failure``; the event leaves the
  queue only after that delivery. A failed delivery is counted, logged and tried again
  later, until the event's age runs out; then the whole record is logged at error level.

The dispatcher takes from the queue only what free concurrency can run, so events of a busy
function wait in the queue rather than being throttled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog

from eventrouter.events import new_request_id
from eventrouter.lineage import DEPTH
from eventrouter.observability.metrics import Failure
from eventrouter.outcomes import (
    Condition,
    Outcome,
    Status,
    async_next,
    batch_item_failure,
    delivery_retry,
    failed_items,
    invocation_record,
    throttle_backoff,
    throttled_response,
    too_old,
)
from eventrouter.runtime.delivery import Delivered
from eventrouter.store.base import StoredEvent, function_queue

if TYPE_CHECKING:
    from eventrouter.contract.spec import Destination
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.runtime.policies.port import PolicyPort

__all__ = ["AsyncPolicy", "function_queue", "throttle_backoff"]

log = structlog.get_logger("eventrouter.async")

#: How often a dispatcher looks for events enqueued by other processes: every 50 ms while
#: it finds some, backing off to 0.5 s when idle (an idle router should not spin). Events
#: enqueued by this process, and retries it schedules, wake it at once or on time.
POLL_INTERVAL = 0.05
IDLE_POLL_INTERVAL = 0.5
#: Events leased in one round at most.
CLAIM_LIMIT = 1000
#: Wait after the store failed to answer a claim.
STORE_RETRY = 1.0


class Consumer:
    """A function as a consumer of the store: its queues and claimed-but-not-started count."""

    __slots__ = ("batch_size", "queues", "starting", "state")

    def __init__(self, state: FunctionState, queues: list[str], batch_size: int) -> None:
        self.state = state
        self.queues = queues
        self.batch_size = batch_size
        self.starting = 0


class AsyncPolicy:
    """Consumes the store for every function of the engine."""

    def __init__(self, runtime: PolicyPort) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.invoker = runtime.invoker
        self.consumers: list[Consumer] = []
        self.by_queue: dict[str, Consumer] = {}
        self.by_function: dict[str, Consumer] = {}
        for name, state in self.invoker.states.items():
            consumer = Consumer(state, [function_queue(name)], 1)
            self.consumers.append(consumer)
            self.by_function[name] = consumer
            self.by_queue[function_queue(name)] = consumer
            source = state.spec.source
            named = source.named_queue if source is not None else None
            if named is not None:  # consumed with the function's own once its mapping starts
                self.by_queue[named] = consumer
        self.in_flight = 0
        #: Told (function, request id, condition) of every event's final outcome (the
        #: scheduler records its fires' outcomes).
        self.final_listeners: list[Callable[[str, str, str], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._poll_interval = POLL_INTERVAL
        self._next_due = float("inf")
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False

    # -- dispatching -------------------------------------------------------------------------

    def notify(self, queues: set[str]) -> None:
        """Events were added to ``queues`` by this process."""
        if any(q in self.by_queue for q in queues):
            self._wake.set()

    def consume_queue(self, function: str, queue: str, batch_size: int) -> None:
        """Take events of embedded queue ``queue`` for ``function``, ``batch_size`` at a time
        (its event source mapping is enabled)."""
        consumer = self.by_function[function]
        if queue not in consumer.queues:
            consumer.queues.append(queue)
        consumer.batch_size = batch_size
        self._wake.set()

    def pause_queue(self, function: str, queue: str) -> None:
        """Leave the events of ``queue`` queued (its mapping is disabled); those claimed
        already are processed."""
        consumer = self.by_function[function]
        if queue in consumer.queues:
            consumer.queues.remove(queue)

    def stop(self) -> None:
        """Take no more events from the queue."""
        self._stopping = True
        self._wake.set()

    async def wait_idle(self) -> None:
        """Wait until no claimed event is still being processed."""
        await self._idle.wait()

    async def run(self) -> None:
        """Claim due events and start their processing until stopped.

        Each event (or queue batch) runs in a task of its own, kept in ``self._tasks``: plain
        asyncio tasks cost a third of a task-group spawn on this, the per-event path. Once
        stopped, ``run`` waits for them to finish (the engine bounds that wait by its grace
        period); when ``run`` is cancelled it cancels and awaits every one of them.
        """
        try:
            await self._dispatch()
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        finally:
            for task in self._tasks:
                task.cancel()
            with anyio.CancelScope(shield=True):
                if self._tasks:
                    await asyncio.wait(self._tasks)

    def _due_at(self, due: float) -> None:
        """An event of this process is due again at ``due``: the dispatcher wakes for it."""
        self._next_due = min(self._next_due, due)

    def _idle_wait(self) -> float:
        now = time.time()
        if self._next_due <= now:
            self._next_due = float("inf")
        return max(0.0, min(self._poll_interval, self._next_due - now))

    async def _dispatch(self) -> None:
        slots = self.invoker.slots
        while not self._stopping:
            plan = self._plan()
            if not plan:
                with anyio.move_on_after(POLL_INTERVAL):
                    await slots.wait_released()
                continue
            self._wake.clear()
            try:
                events = await self.store.claim(plan)
            except Exception as exc:  # noqa: BLE001 - a full disk, a lock, the network: wait
                self.runtime.metrics.add("StoreErrors", "*")
                log.error("claiming events failed", error=repr(exc), retry_in=STORE_RETRY)
                await anyio.sleep(STORE_RETRY)
                continue
            if self._stopping:  # claimed while stopping: give them back untouched
                for ev in events:
                    self.store.reschedule(ev, ev.enqueued_at, ev.attempts, ev.throttles)
                break
            if not events:
                with anyio.move_on_after(self._idle_wait()):
                    await self._wake.wait()
                self._poll_interval = min(IDLE_POLL_INTERVAL, self._poll_interval * 2)
                continue
            self._poll_interval = POLL_INTERVAL
            self._start(events)

    def _plan(self) -> list[tuple[list[str], int]]:
        slots = self.invoker.slots
        shared: list[str] = []
        shared_starting = 0
        plan: list[tuple[list[str], int]] = []
        for c in self.consumers:
            if c.state.slots.reserved is None and c.batch_size == 1:
                shared.extend(c.queues)
                shared_starting += c.starting
                continue
            free = slots.free(c.state.slots) - c.starting
            if c.state.slots.reserved == 0:
                free = 100  # reserved concurrency 0: take events to send them to on_failure
            if free > 0:
                plan.append((c.queues, min(CLAIM_LIMIT, free * c.batch_size)))
        pool_free = slots.pool - slots.pool_in_flight - shared_starting
        if shared and pool_free > 0:
            plan.append((shared, min(CLAIM_LIMIT, pool_free)))
        return plan

    def _start(self, events: list[StoredEvent]) -> None:
        by_consumer: dict[Consumer, list[StoredEvent]] = {}
        for ev in events:
            by_consumer.setdefault(self.by_queue[ev.queue], []).append(ev)
        for consumer, evs in by_consumer.items():
            if consumer.batch_size == 1:
                for ev in evs:
                    self._spawn(consumer, [ev])
            else:
                for i in range(0, len(evs), consumer.batch_size):
                    self._spawn(consumer, evs[i : i + consumer.batch_size])

    def _spawn(self, consumer: Consumer, events: list[StoredEvent]) -> None:
        consumer.starting += 1
        self.in_flight += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._process(consumer, events))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, consumer: Consumer, events: list[StoredEvent]) -> None:
        consumer.starting -= 1
        try:
            state = consumer.state
            pending = [ev for ev in events if ev.record is None]
            for ev in events:
                if ev.record is not None:
                    await self._redeliver(state, ev)
            now = time.time()
            fresh = []
            metrics = self.runtime.metrics
            name = state.spec.name
            for ev in pending:
                metrics.async_attempt(
                    name, (now - ev.enqueued_at) * 1000, ev.attempts == 0 and ev.throttles == 0
                )
                if too_old(ev.enqueued_at, now, state.spec.settings):
                    await self._final(state, ev, "EventAgeExceeded", None)
                else:
                    fresh.append(ev)
            if not fresh:
                return
            if state.slots.reserved == 0:
                for ev in fresh:
                    throttled = Outcome(
                        Status.THROTTLED,
                        ev.request_id,
                        reason="ReservedFunctionConcurrentInvocationLimitExceeded",
                    )
                    await self._final(state, ev, "RetriesExhausted", throttled)
                return
            if consumer.batch_size == 1 and len(fresh) == 1:
                ev = fresh[0]
                outcome = await self.invoker.invoke(
                    state, ev.payload, ev.request_id, ev.attempts + 1, ev.trace, ev.lineage
                )
                await self._settle(state, ev, outcome)
            else:
                await self._process_batch(state, fresh)
        except Exception:  # never let one event take the dispatcher down
            log.exception("processing failed", function=consumer.state.spec.name)
            for ev in events:
                self.store.reschedule(ev, time.time() + 1.0, ev.attempts, ev.throttles)
                self._due_at(time.time() + 1.0)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def _process_batch(self, state: FunctionState, events: list[StoredEvent]) -> None:
        invoker = self.invoker
        values: list[Any] = []
        valid: list[StoredEvent] = []
        for ev in events:
            try:
                values.append(state.spec.decoder.decode(ev.payload))
                valid.append(ev)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._settle(state, ev, invoker.invalid_payload(state, exc, ev.request_id))
        if not valid:
            return
        attempt = max(ev.attempts for ev in valid) + 1
        ids = [ev.request_id for ev in valid]
        outcome = await invoker.invoke_value(
            state,
            values,
            new_request_id(),
            attempt,
            ids,
            links=[ev.trace for ev in valid],
            lineage=max(ev.lineage for ev in valid),
        )
        if not outcome.ok:
            for ev in valid:
                await self._settle(state, ev, outcome.for_item(ev.request_id))
            return
        failed = set(failed_items(outcome.response, ids))
        for i, ev in enumerate(valid):
            own = batch_item_failure(outcome.request_id) if i in failed else outcome
            await self._settle(state, ev, own.for_item(ev.request_id))

    # -- outcomes ----------------------------------------------------------------------------

    async def _settle(self, state: FunctionState, ev: StoredEvent, outcome: Outcome) -> None:
        """Apply Lambda's asynchronous rules (:func:`async_next`) to the event's outcome."""
        settings = state.spec.settings
        now = time.time()
        step = async_next(
            outcome.status,
            attempts=ev.attempts,
            throttles=ev.throttles,
            enqueued_at=ev.enqueued_at,
            now=now,
            settings=settings,
        )
        ev.attempts = step.attempts
        if step.condition is not None:
            await self._final(state, ev, step.condition, outcome)
            return
        throttled = outcome.status is Status.THROTTLED
        # Throttles can come by the thousand under load: logged at debug level.
        (log.debug if throttled else log.info)(
            "throttled" if throttled else "retry scheduled",
            function=state.spec.name,
            request_id=ev.request_id,
            attempt=ev.attempts + 1,
            retry_in=round(step.due - now, 3),
        )
        self.store.reschedule(ev, step.due, step.attempts, step.throttles)
        self._due_at(step.due)

    async def _final(
        self, state: FunctionState, ev: StoredEvent, condition: Condition, outcome: Outcome | None
    ) -> None:
        spec = state.spec
        for listener in self.final_listeners:
            listener(spec.name, ev.request_id, condition)
        success = condition == "Success"
        kind = "on_success" if success else "on_failure"
        destination = spec.settings.on_success if success else spec.settings.on_failure
        if not success:
            metrics = self.runtime.metrics
            metrics.add(
                "AsyncEventsDropped" if destination is None else "AsyncEventsFailed", spec.name
            )
            error = outcome.error if outcome is not None else None
            metrics.failed(
                Failure(
                    spec.name,
                    ev.request_id,
                    error["errorType"] if error else condition,
                    str(error["errorMessage"]) if error else f"the event ended: {condition}",
                    condition,
                )
            )
        if not success:
            log.warning(
                "event failed",
                function=spec.name,
                request_id=ev.request_id,
                condition=condition,
                attempts=ev.attempts,
                error=_failure_type(outcome),
                destination="none (no on_failure destination: the event is dropped)"
                if destination is None
                else destination.describe(),
            )
        if destination is None:
            self.store.ack(ev)
            return
        status_code = 200
        if outcome is not None and outcome.status is Status.THROTTLED:
            status_code = 429
            response: bytes | None = throttled_response(outcome.reason)
        else:
            response = outcome.response if outcome is not None else None
        record = invocation_record(
            request_id=ev.request_id,
            function_name=spec.name,
            condition=condition,
            invoke_count=ev.attempts if not success else ev.attempts + 1,
            request_payload=ev.payload,
            response_payload=response,
            function_error=outcome is not None and not success and outcome.error is not None,
            status_code=status_code,
        )
        trace = outcome.trace if outcome is not None and outcome.trace else ev.trace
        await self._deliver(state, ev, record, kind, destination, trace)

    async def _redeliver(self, state: FunctionState, ev: StoredEvent) -> None:
        settings = state.spec.settings
        destination = settings.on_success if ev.record_kind == "on_success" else settings.on_failure
        assert ev.record is not None and ev.record_kind is not None
        if destination is None:  # the destination was removed from the code since
            log.error(
                "record dropped: destination no longer configured",
                function=state.spec.name,
                request_id=ev.request_id,
                kind=ev.record_kind,
                record=ev.record.decode(errors="replace"),
            )
            self.store.ack(ev)
            return
        await self._deliver(state, ev, ev.record, ev.record_kind, destination, ev.trace)

    async def _deliver(
        self,
        state: FunctionState,
        ev: StoredEvent,
        record: bytes,
        kind: str,
        destination: Destination,
        trace: str | None,
    ) -> None:
        """Deliver the event's final record; the event leaves the queue once it is out (or
        refused), else it is kept with its record until the event's maximum age."""
        spec = state.spec
        # The record is made by the event's invocation: what it starts is one deeper.
        token = DEPTH.set(ev.lineage + 1)
        try:
            result, error = await self.runtime.deliveries.deliver(
                spec, kind, destination, record, ev.request_id, trace
            )
        finally:
            DEPTH.reset(token)
        if result is Delivered.FAILED:
            now = time.time()
            deliveries = (ev.throttles if ev.record is not None else 0) + 1
            due = now + delivery_retry(deliveries)
            fields = {
                "function": spec.name,
                "request_id": ev.request_id,
                "destination": destination.describe(),
                "kind": kind,
                "error": repr(error),
            }
            if not too_old(ev.enqueued_at, due, spec.settings):
                log.error("destination delivery failed, will retry", retry_in=due - now, **fields)
                self.store.hold_record(ev, record, kind, due, deliveries)
                self._due_at(due)
                return
            log.error(
                "destination delivery failed, record dropped after max_event_age",
                record=record.decode(errors="replace"),
                **fields,
            )
        self.store.ack(ev)


def _failure_type(outcome: Outcome | None) -> str | None:
    """What ended an event: its error's type, a throttle, a stop as a recursive loop."""
    if outcome is None:
        return None
    if outcome.error is not None:
        return str(outcome.error["errorType"])
    return outcome.status.name
