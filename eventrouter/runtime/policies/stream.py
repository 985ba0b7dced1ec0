"""The stream model (lambda-semantics.md §2): checkpointed polling of partitions.

The rules live here and in :mod:`eventrouter.runtime.policies.stream_batch` (one batch), once; a
:class:`~eventrouter.contract.adapters.StreamAdapter` knows its transport (Kafka
today: ``sources/kafka/source.py``): fetch, pause, resume, commit, assignment, and the shapes of
its records in Lambda's event and failure record.

- Records of one partition go to the function in order, one batch at a time; partitions run
  in parallel (up to the function's concurrency).
- A failing batch holds its partition (its buffer fills and it is paused) and is
  retried with backoff; ``bisect_on_error`` splits it in two first (not counted as a retry);
  ``max_retries`` / ``max_record_age`` end the retries with a failure record to
  ``on_failure``, and the partition moves on. Other partitions keep going.
- A per-record handler that fails at record *i*, or a ``batchItemFailures`` response, makes
  the lowest failed offset the new checkpoint and processing restarts there.
- Records that do not decode or validate go to ``on_failure`` at once; records that match
  no filter are skipped. Both count as done.
- The checkpoint (committed offset) only moves past records that are done: after each
  batch, on revocation and at shutdown.
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import msgspec
import structlog

from eventrouter.contract.adapters import StreamAdapter
from eventrouter.errors import ConfigError
from eventrouter.runtime.policies.partitions import Lane, Partition
from eventrouter.runtime.policies.stream_batch import BatchRunner
from eventrouter.runtime.policies.stream_window import Windows
from eventrouter.services.hiccups import Hiccups

if TYPE_CHECKING:
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.runtime.policies.port import PolicyPort

log = structlog.get_logger("eventrouter.stream")

#: Lambda's cap on the payload of one batch.
BATCH_BYTES = 6 * 1024 * 1024
LAG_INTERVAL = 10.0
REVOKE_GRACE = 10.0

_encoder = msgspec.json.Encoder()
_VALUE = operator.attrgetter("value")


class StreamPolicy:
    """Consumes one stream source for one function."""

    def __init__(self, runtime: PolicyPort, state: FunctionState, adapter: StreamAdapter) -> None:
        self.runtime = runtime
        self.state = state
        self.adapter = adapter
        self.source = source = adapter.source
        self.windows = (
            Windows(
                runtime,
                state,
                adapter,
                source.tumbling_window,
                stopping=lambda: self._stopping,
                changed=self._window_changed,
            )
            if source.tumbling_window
            else None
        )
        self.batches = BatchRunner(
            runtime,
            state,
            adapter,
            stopping=lambda: self._stopping,
            mark_done=self._mark_done,
            windows=self.windows,
        )
        self.form = self.batches.form
        if self.windows is not None and self.form != "raw":
            raise ConfigError(
                f"function {state.spec.name!r}: tumbling_window needs the raw event form "
                "(a dict parameter): the window and its state are in the event"
            )
        #: Batches of one partition in flight at once (Kinesis and DynamoDB Streams'
        #: ``parallelization_factor``; records of one key stay in order, in one lane).
        self.lanes: int = source.parallelization_factor
        self.partitions: dict[Any, Partition] = {}
        # Fetched records a partition may hold before it is paused: only a partition that is
        # stuck (a failing batch holds it) gets this far behind.
        self.high_water = max(10 * source.batch_size, 10_000)
        self._drained = asyncio.Event()
        #: Offset lag, iterator age (ms) and ms behind the tip per partition, at the last
        #: report (:meth:`update_lag`).
        self.lag: dict[str, int] = {}
        self.iterator_age: dict[str, int] = {}
        self.behind: dict[str, int] = {}
        self.in_flight = 0
        self._pending_commit: dict[Any, int] = {}
        self._pending_windows: dict[Any, bytes | None] = {}
        self._commit_wake = asyncio.Event()
        self._stopping = False
        self._stopped = anyio.Event()
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Join the group and consume until stopped; commit what is done on the way out."""
        failed: Exception | None = None
        try:
            async with anyio.create_task_group() as tg:
                self._task_group = tg
                try:
                    await self.adapter.start(self._assigned, self._revoked)
                except Exception as exc:  # noqa: BLE001 - raised below, not wrapped in a group
                    failed = exc
                    tg.cancel_scope.cancel()
                    return
                log.info(
                    "stream source started",
                    function=self.state.spec.name,
                    form=self.form,
                    **self.adapter.describe(),
                )
                task_status.started()
                tg.start_soon(self._committer)
                tg.start_soon(self._report_lag)
                await self._fetch_loop()
                self._wake_all()
                for part in list(self.partitions.values()):
                    await part.finished.wait()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._commit_now()
                try:
                    await self.adapter.stop()
                except Exception as exc:  # noqa: BLE001 - leaving the group is best effort
                    log.warning("stream consumer stop failed", error=repr(exc))
                self._stopped.set()
            if failed is not None:
                raise failed

    def stop(self) -> None:
        """Stop fetching; batches in flight finish (the engine bounds that by its grace)."""
        self._stopping = True
        self._wake_all()

    def _wake_all(self) -> None:
        for part in self.partitions.values():
            for lane in part.lanes:
                lane.wake.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # -- partitions --------------------------------------------------------------------------

    async def _assigned(self, tps: set[Any]) -> None:
        if self.source.starting_position == "AT_TIMESTAMP":
            fresh = {tp for tp in tps if await self.adapter.committed(tp) is None}
            if fresh:
                assert self.source.starting_timestamp is not None
                await self.adapter.seek_to_timestamp(fresh, self.source.starting_timestamp)
        assert self._task_group is not None
        for tp in tps:
            if tp not in self.partitions:
                part = Partition(tp, self.lanes)
                if self.windows is not None:
                    part.window = self.windows.decode(self.adapter.window(tp))
                self.partitions[tp] = part
                for lane in part.lanes:
                    self._task_group.start_soon(self._work, lane)
                self._task_group.start_soon(self._finish_when_lanes_finish, part)
        log.info(
            "partitions assigned",
            function=self.state.spec.name,
            partitions=sorted(map(self.adapter.partition_name, tps)),
        )

    async def _revoked(self, tps: set[Any]) -> None:
        offsets: dict[Any, int] = {}
        for tp in tps:
            part = self.partitions.pop(tp, None)
            if part is None:
                continue
            part.revoked = True
            for lane in part.lanes:
                lane.wake.set()
            with anyio.move_on_after(REVOKE_GRACE):
                await part.finished.wait()
            for lane in part.lanes:
                if lane.scope is not None:
                    lane.scope.cancel()
            self._pending_commit.pop(tp, None)
            self._pending_windows.pop(tp, None)
            if part.done is not None:
                offsets[tp] = part.done
        if offsets:
            try:
                await self.adapter.commit(offsets)
            except Exception as exc:  # noqa: BLE001 - the new owner re-reads from the last commit
                log.warning("commit on revocation failed", error=repr(exc))
        log.info(
            "partitions revoked",
            function=self.state.spec.name,
            partitions=sorted(map(self.adapter.partition_name, tps)),
        )

    async def _fetch_loop(self) -> None:
        hiccups = Hiccups("stream fetch failed", self.runtime.metrics, self.state.spec.name)
        max_records = max(self.source.batch_size * 4, 1000)
        partitions = self.partitions
        while not self._stopping:
            paused = sum(1 for part in partitions.values() if part.paused)
            if paused and paused == len(partitions):
                self._drained.clear()
                with anyio.move_on_after(0.5):
                    await self._drained.wait()
                continue
            try:
                # Always every fetchable partition: aiokafka sends a partition's next fetch
                # only once its last response is consumed, so leaving one out stalls it.
                data = await self.adapter.fetch(None, 0.2, max_records)
                hiccups.ok()
            except Exception as exc:  # noqa: BLE001 - a broker hiccup must not stop the source
                await hiccups.failed(exc)
                continue
            for tp, records in data.items():
                part = self.partitions.get(tp)
                if part is None or not records:
                    continue
                part.fetched_to = records[-1].offset + 1
                part.iterator_age = int(time.time() * 1000) - records[-1].timestamp
                lanes = part.lanes
                if len(lanes) == 1:
                    lane = lanes[0]
                    lane.buffer.extend(records)
                    lane.wake.set()
                    if len(lane.buffer) >= self.high_water and not part.paused:
                        # A partition this far behind is stuck (a failing batch): stop
                        # fetching it.
                        self.adapter.pause(tp)
                        part.paused = True
                    continue
                n = len(lanes)
                for record in records:  # one partition key, one lane: its order is kept
                    lanes[hash(record.key) % n].buffer.append(record)
                for lane in lanes:
                    if lane.buffer:
                        lane.wake.set()
                        if len(lane.buffer) >= self.high_water and not part.paused:
                            self.adapter.pause(tp)
                            part.paused = True

    async def _work(self, lane: Lane) -> None:
        part = lane.part
        try:
            with anyio.CancelScope() as lane.scope:
                while not (self._stopping or part.revoked):
                    if self.windows is not None and await self.windows.close_if_due(lane):
                        continue
                    batch = await self._next_batch(lane)
                    if not batch:
                        continue
                    self.in_flight += 1
                    try:
                        done = await self.batches.run(lane, batch)
                    finally:
                        self.in_flight -= 1
                    if done:
                        lane.current_from = None
                        self._advance(part)
        finally:
            lane.finished.set()

    async def _finish_when_lanes_finish(self, part: Partition) -> None:
        for lane in part.lanes:
            await lane.finished.wait()
        part.finished.set()

    async def _next_batch(self, lane: Lane) -> list[Any]:
        part = lane.part
        buffer = lane.buffer
        size = self.source.batch_size
        while not buffer:
            if self._stopping or part.revoked:
                return []
            lane.wake.clear()
            if self.windows is not None and part.window is not None:
                # Back when the open window ends, for its final invocation.
                with anyio.move_on_after(self.windows.seconds_left(part) or 0) as waited:
                    await lane.wake.wait()
                if waited.cancelled_caught:
                    return []
                continue
            await lane.wake.wait()
        if len(buffer) < size and self.source.batching_window > 0:
            with anyio.move_on_after(self.source.batching_window):
                while len(buffer) < size and not (self._stopping or part.revoked):
                    lane.wake.clear()
                    await lane.wake.wait()
        n = min(size, len(buffer))
        try:  # C-level over the batch; a None value (a tombstone) takes the slow path
            total = sum(map(len, map(_VALUE, buffer[:n])))
        except TypeError:
            total = sum(len(r.value or b"") for r in buffer[:n])
        if total > BATCH_BYTES:  # Lambda's 6 MB cap: cut the batch where it is reached
            total = 0
            for k in range(n):
                total += len(buffer[k].value or b"")
                if k and total > BATCH_BYTES:
                    n = k
                    break
        if self.windows is not None:  # a batch never spans two windows
            n = self.windows.cut(buffer[:n])
        batch = buffer[:n]
        del buffer[:n]
        lane.current_from = batch[0].offset
        if part.paused and all(len(other.buffer) < size for other in part.lanes):
            self.adapter.resume(part.tp)
            part.paused = False
            self._drained.set()
        return batch

    # -- checkpoints -------------------------------------------------------------------------

    def _mark_done(self, lane: Lane, offset: int) -> None:
        """Records of the lane's batch below ``offset`` are done."""
        lane.current_from = offset
        self._advance(lane.part)

    def _advance(self, part: Partition) -> None:
        """Move the checkpoint to the lowest offset the lanes have not finished."""
        offset = part.first_unfinished()
        if part.revoked or offset is None or (part.done is not None and offset <= part.done):
            return
        part.done = offset
        self._pending_commit[part.tp] = offset
        if self.windows is not None:
            self._pending_windows[part.tp] = self.windows.encode(part.window)
        self._commit_wake.set()

    def _window_changed(self, part: Partition) -> None:
        """A window closed (or restarted) with no record done: store it with the checkpoint."""
        assert self.windows is not None
        if not part.revoked:
            self._pending_windows[part.tp] = self.windows.encode(part.window)
            self._commit_wake.set()

    async def _committer(self) -> None:
        while True:
            await self._commit_wake.wait()
            self._commit_wake.clear()
            await self._commit_now()

    async def _commit_now(self) -> None:
        if not (self._pending_commit or self._pending_windows):
            return
        offsets, self._pending_commit = self._pending_commit, {}
        windows, self._pending_windows = self._pending_windows, {}
        try:
            # Shielded: a commit cut off half-way goes on inside aiokafka and fails there
            # once the consumer is closed; finishing it is quick and keeps the checkpoint.
            with anyio.CancelScope(shield=True):
                if windows:
                    await self.adapter.commit(offsets, windows)
                else:
                    await self.adapter.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - retried with the next commit
            log.warning("commit failed", function=self.state.spec.name, error=repr(exc))
            for tp, offset in offsets.items():
                if tp in self.partitions and tp not in self._pending_commit:
                    self._pending_commit[tp] = offset
            for tp, window in windows.items():
                if tp in self.partitions and tp not in self._pending_windows:
                    self._pending_windows[tp] = window
            await anyio.sleep(0.5)

    async def _report_lag(self) -> None:
        while True:
            await anyio.sleep(LAG_INTERVAL)
            self.update_lag()
            if self.lag or self.iterator_age:
                log.info(
                    "stream lag",
                    function=self.state.spec.name,
                    lag=self.lag,
                    total=sum(self.lag.values()),
                    iterator_age_ms=self.iterator_age,
                    behind_ms=self.behind,
                )

    def update_lag(self) -> dict[str, int]:
        """Per partition: the offset lag (the log end minus the checkpoint, Kafka's scaling
        signal), the ``IteratorAge`` (ms between the arrival of the last record read and its
        reading) and, where the service says, how far behind its tip reading is (Kinesis's
        ``MillisBehindLatest``)."""
        lag, age, behind = {}, {}, {}
        for tp, part in self.partitions.items():
            name = self.adapter.partition_name(tp)
            end = self.adapter.highwater(tp)
            if end is not None and part.done is not None:
                lag[name] = max(0, end - part.done)
            if part.iterator_age is not None:
                age[name] = part.iterator_age
            millis = self.adapter.millis_behind(tp)
            if millis is not None:
                behind[name] = millis
        self.lag, self.iterator_age, self.behind = lag, age, behind
        return lag
