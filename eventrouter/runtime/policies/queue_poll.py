"""The queue model (lambda-semantics.md §2, queue): pollers that receive, invoke and delete.

The rules live here; a :class:`QueueAdapter` knows the transport (SQS: ``sources/sqs/source.py``).

- Received messages are invisible for the queue's visibility timeout; success deletes them;
  a failure leaves them to reappear (with ``report_batch_item_failures`` only the listed
  ids); after ``maxReceiveCount`` receives the queue's own redrive policy moves a message to
  its dead-letter queue. A visibility timeout shorter than the function's timeout is refused.
- Pollers scale as Lambda's do: ``min_pollers`` to start, more while receives come back
  full, fewer when they come back empty or fail; never more than ``max_concurrency`` or the
  function's reserved concurrency. A poller with no free concurrency slot does not receive.
- Messages that match no filter are deleted.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import msgspec
import structlog

from eventrouter.contract.adapters import QueueAdapter
from eventrouter.contract.spec import pull_decoder
from eventrouter.errors import ConfigError
from eventrouter.events import new_request_id
from eventrouter.observability import tracing
from eventrouter.outcomes import Status
from eventrouter.runtime.policies.batch import batch_event, failed_indices, invoke_batch
from eventrouter.services.hiccups import Hiccups

if TYPE_CHECKING:
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.runtime.policies.port import PolicyPort

log = structlog.get_logger("eventrouter.sqs")


class QueuePollPolicy:
    """Consumes one polled queue for one function."""

    def __init__(self, runtime: PolicyPort, state: FunctionState, adapter: QueueAdapter) -> None:
        self.runtime = runtime
        self.state = state
        self.adapter = adapter
        self.source_arn: str | None = None
        self.source = source = adapter.source
        self.form, self.decoder = pull_decoder(state.spec)
        self._filters = source.compiled_filters or None
        # What a receive asks for: everything for Lambda's raw event; otherwise what the
        # router itself reads (every extra attribute is parsed on each receive).
        self._attributes = (
            ["All"]
            if self.form == "raw"
            else ["ApproximateReceiveCount", "MessageGroupId", "SentTimestamp", "AWSTraceHeader"]
        )
        #: Pollers wanted and running; (time, wanted) at every change, for plots.
        self.target = 0
        self.running = 0
        self._starting = 0
        #: The last 10,000 changes, so that a long run does not grow it without bound.
        self.history: deque[tuple[float, int]] = deque(maxlen=10_000)
        self.in_flight = 0
        self._full = 0
        self._empty = 0
        self._errors = 0
        self._stopping = False
        self._receiving: set[anyio.CancelScope] = set()
        self._stop_requested = anyio.Event()
        self._idle = anyio.Event()
        self._done = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await self._connect()
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                self._set_target(self.source.min_pollers, "start")
                tg.start_soon(self._scale)
                task_status.started()
                await self._stop_requested.wait()
                if self.running:  # pollers finish the batch they hold, then leave
                    await self._idle.wait()
                tg.cancel_scope.cancel()
        finally:
            self._done.set()

    async def _connect(self) -> None:
        spec = self.state.spec
        try:
            info = await self.adapter.connect()
        except Exception as exc:
            raise ConfigError(f"{self.adapter.label} for function {spec.name!r}: {exc}") from exc
        #: The queue's ARN as its service names it (the event source mapping shows it).
        self.source_arn = info.arn
        if self.source.principal is not None:
            self.runtime.guard.check_source(spec, self.source.principal, info.arn)
        if info.visibility_timeout < spec.settings.timeout:
            raise ConfigError(
                f"{self.adapter.label}: the queue's visibility timeout "
                f"({info.visibility_timeout} s) is shorter than function {spec.name!r}'s "
                f"timeout ({spec.settings.timeout:g} s): messages would reappear while still "
                "being handled; raise the visibility timeout"
            )
        log.info("queue source started", function=spec.name, queue=info.url, form=self.form)

    def stop(self) -> None:
        """Stop receiving; batches in flight finish (the engine bounds that by its grace).

        A receive still waiting on its long poll is cancelled: at worst the messages it was
        given become visible again after the visibility timeout (at least once).
        """
        self._stopping = True
        self._stop_requested.set()
        for scope in self._receiving:
            scope.cancel()

    @property
    def receiving(self) -> int:
        """Receives waiting on the queue now (long polls)."""
        return len(self._receiving)

    async def wait_stopped(self) -> None:
        await self._done.wait()

    # -- scaling -----------------------------------------------------------------------------

    def _cap(self) -> int:
        reserved = self.state.slots.reserved
        cap: int = self.source.max_concurrency
        return min(cap, reserved) if reserved is not None else cap

    def _set_target(self, target: int, reason: str) -> None:
        target = max(1, min(target, self._cap()))
        if target == self.target:
            return
        self.target = target
        self.history.append((time.monotonic(), target))
        log.info("sqs pollers", function=self.state.spec.name, pollers=target, reason=reason)
        assert self._task_group is not None
        while self.running + self._starting < target:
            self._starting += 1
            self._task_group.start_soon(self._poll)

    async def _scale(self) -> None:
        source = self.source
        step = max(1, round(source.scale_up_per_minute * source.scale_tick / 60))
        while not self._stopping:
            await anyio.sleep(source.scale_tick)
            full, empty, errors = self._full, self._empty, self._errors
            self._full = self._empty = self._errors = 0
            if errors:
                self._set_target(
                    self.target - max(1, (self.target - source.min_pollers) // 2)
                    if self.target > source.min_pollers
                    else self.target,
                    "errors",
                )
            elif full and self.runtime.slots.free(self.state.slots) > 0:
                self._set_target(self.target + step, "backlog")
            elif empty and not full:
                shrink = max(1, (self.target - source.min_pollers) // 2)
                self._set_target(max(source.min_pollers, self.target - shrink), "empty")

    # -- polling -----------------------------------------------------------------------------

    async def _poll(self) -> None:
        self._starting -= 1
        self.running += 1
        hiccups = Hiccups("sqs receive failed", self.runtime.metrics, self.state.spec.name)
        slots = self.runtime.slots
        try:
            while not self._stopping and self.running <= self.target:
                if slots.free(self.state.slots) <= 0:  # no slot: do not burn a receive
                    with anyio.move_on_after(1.0):
                        await slots.wait_released()
                    continue
                try:
                    with anyio.CancelScope() as scope:
                        self._receiving.add(scope)
                        messages = await self._receive()
                    self._receiving.discard(scope)
                    if scope.cancelled_caught:
                        break
                    hiccups.ok()
                except Exception as exc:  # noqa: BLE001 - the queue service may come back
                    self._errors += 1
                    await hiccups.failed(exc)
                    continue
                if not messages:
                    continue
                self.in_flight += 1
                try:
                    await self._process(messages)
                finally:
                    self.in_flight -= 1
        finally:
            self.running -= 1
            if self.running == 0 and self._stopping:
                self._idle.set()

    async def _receive(self) -> list[dict[str, Any]]:
        source = self.source
        per_call = min(10, source.batch_size)
        messages = await self.adapter.receive(per_call, source.wait_time_seconds, self._attributes)
        if len(messages) == per_call:
            self._full += 1
        elif not messages:
            self._empty += 1
        if messages and source.batch_size > 10 and source.batching_window > 0:
            deadline = time.monotonic() + source.batching_window
            while len(messages) < source.batch_size and time.monotonic() < deadline:
                more = await self.adapter.receive(
                    min(10, source.batch_size - len(messages)), 0, self._attributes
                )
                if not more:
                    break
                messages.extend(more)
        return messages

    async def _process(self, raws: list[dict[str, Any]]) -> None:
        done: list[dict[str, Any]] = []
        if self._filters is not None:
            kept: list[dict[str, Any]] = []
            for raw in raws:
                (kept if self._filters.match(self.adapter.filter_view(raw)) else done).append(raw)
            if done:
                self.runtime.metrics.add("FilteredRecords", self.state.spec.name, len(done))
            raws = kept
        values: list[Any] = []
        good: list[dict[str, Any]] = []
        if self.decoder is None:
            good = raws
        else:
            for raw in raws:
                try:
                    values.append(self.decoder.decode(self.adapter.value_of(raw)))
                    good.append(raw)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    # Left on the queue: its redrive policy takes it to the DLQ in the end.
                    self.runtime.metrics.add("InvalidRecords", self.state.spec.name)
                    log.warning(
                        "invalid message left on the queue",
                        function=self.state.spec.name,
                        message_id=self.adapter.item_identifier(raw),
                        error=str(exc),
                    )
        if good:
            done.extend(await self._invoke(good, values))
        await self._delete(done)

    async def _invoke(self, raws: list[dict[str, Any]], values: list[Any]) -> list[dict[str, Any]]:
        """Invoke the handler; return the messages that are done (to delete)."""
        attempt = self.adapter.attempt_of(raws)
        if self.form == "record":
            return await self._each(raws, values, attempt)
        event, records = batch_event(self.adapter, self.form == "raw", raws, values)
        outcome = await invoke_batch(
            self.runtime.invoker, self.state, self.adapter, raws, event, records, attempt
        )
        if outcome.status is not Status.SUCCESS:
            return []
        if not self.source.report_batch_item_failures:
            return raws
        failed = set(failed_indices(self.adapter, outcome, raws))
        return [r for i, r in enumerate(raws) if i not in failed]

    async def _each(
        self, raws: list[dict[str, Any]], values: list[Any], attempt: int
    ) -> list[dict[str, Any]]:
        invoker = self.runtime.invoker
        done: list[dict[str, Any]] = []

        async def one(raw: dict[str, Any], value: Any) -> bool:
            outcome = await invoker.invoke_value(
                self.state,
                value,
                new_request_id(),
                attempt,
                records=[self.adapter.record(raw, value)],
                trace=self.adapter.trace_of(raw) if tracing.TRACER is not None else None,
                lineage=self.adapter.lineage_of([raw]),
            )
            if outcome.status is Status.SUCCESS:
                done.append(raw)
                return True
            return False

        if not self.adapter.fifo:
            async with anyio.create_task_group() as tg:
                for raw, value in zip(raws, values, strict=True):
                    tg.start_soon(one, raw, value)
            return done
        groups: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        for raw, value in zip(raws, values, strict=True):
            group = self.adapter.group_of(raw)
            groups.setdefault(group, []).append((raw, value))

        async def in_order(items: list[tuple[dict[str, Any], Any]]) -> None:
            for raw, value in items:
                if not await one(raw, value):
                    return  # this one and the rest of its group stay on the queue

        async with anyio.create_task_group() as tg:
            for items in groups.values():
                tg.start_soon(in_order, items)
        return done

    async def _delete(self, messages: list[dict[str, Any]]) -> None:
        """Delete what is done; what cannot be deleted reappears and is handled again."""
        if not messages:
            return
        try:
            failed = await self.adapter.delete(messages)
        except Exception as exc:  # noqa: BLE001 - they reappear and are handled again
            log.error(
                "queue delete failed",
                function=self.state.spec.name,
                error=repr(exc),
                count=len(messages),
            )
            return
        if failed:
            log.warning("queue delete failed", function=self.state.spec.name, failed=failed)
