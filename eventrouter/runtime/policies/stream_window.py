"""Tumbling windows: Lambda's stateful aggregation over a shard (Kinesis, DynamoDB Streams,
``tumbling_window`` seconds).

- Every record belongs to the window its arrival time falls in (windows of
  ``tumbling_window`` seconds from the epoch); a batch never spans two windows.
- Each invocation's event carries ``window`` (``start``/``end``), ``state`` (what the last
  invocation of this window and shard returned; ``{}`` at first), ``shardId``,
  ``eventSourceARN``, ``isFinalInvokeForWindow`` and ``isWindowTerminatedEarly``.
- The handler must return ``{"state": {...}}`` (with ``batchItemFailures`` if it likes);
  a response without ``state`` is a failed invocation, retried as any failed batch.
- When the window has ended (its end passed on the clock, or a record of a later window is
  next), the function is invoked once more with no records, the final state and
  ``isFinalInvokeForWindow: true``, retried until it succeeds; then the state is dropped.
- A state over 1 MB ends the window early: a final invocation with that state and
  ``isWindowTerminatedEarly: true``, then the same window goes on with a fresh state.
- The open window (start and state) is stored with the shard's checkpoint, so a restart
  resumes it where the checkpoint is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog

from eventrouter.backoff import backoff
from eventrouter.events import new_request_id
from eventrouter.outcomes import Outcome, Status, error_document, failed
from eventrouter.runtime.policies.partitions import Window

if TYPE_CHECKING:
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.runtime.policies.partitions import Lane, Partition
    from eventrouter.runtime.policies.port import PolicyPort

log = structlog.get_logger("eventrouter.stream")

#: Lambda's limit on a window's state (per shard).
STATE_LIMIT = 1024 * 1024
MISSING_STATE = "TumblingWindowStateMissing"
#: Once a window's end has passed: how often to look whether its shard was read past it.
READ_THROUGH_POLL = 0.05

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Windows:
    """The tumbling windows of one function's shards."""

    def __init__(
        self,
        runtime: PolicyPort,
        state: FunctionState,
        adapter: Any,
        seconds: float,
        *,
        stopping: Callable[[], bool],
        changed: Callable[[Partition], None],
    ) -> None:
        self.runtime = runtime
        self.fn = state
        self.adapter = adapter
        self.size = int(seconds * 1000)
        self.stopping = stopping
        #: The partition's window changed without its checkpoint moving: store it.
        self.changed = changed

    # -- stored form -------------------------------------------------------------------------

    @staticmethod
    def encode(window: Window | None) -> bytes | None:
        return None if window is None else _encoder.encode([window.start, window.state])

    @staticmethod
    def decode(data: bytes | None) -> Window | None:
        if not data:
            return None
        start, state = _decoder.decode(data)
        return Window(int(start), state)

    # -- batches -----------------------------------------------------------------------------

    def start_of(self, timestamp_ms: int) -> int:
        return timestamp_ms - timestamp_ms % self.size

    def cut(self, batch: list[Any]) -> int:
        """How many records of ``batch`` (in order) fall in the first one's window."""
        end = self.start_of(batch[0].timestamp) + self.size
        for i, record in enumerate(batch):
            if record.timestamp >= end:
                return i
        return len(batch)

    def event(
        self, part: Partition, raws: list[Any], *, final: bool = False, early: bool = False
    ) -> dict[str, Any]:
        """Lambda's event for ``raws`` in the partition's window (its state carried)."""
        window = part.window
        start = self.start_of(raws[0].timestamp) if raws else window.start if window else 0
        state = window.state if window is not None and window.start == start else {}
        event: dict[str, Any] = self.adapter.lambda_event(raws)
        event["window"] = {"start": _iso(start), "end": _iso(start + self.size)}
        event["state"] = state
        event["shardId"] = self.adapter.partition_name(part.tp)
        event["eventSourceARN"] = self.adapter.arn
        event["isFinalInvokeForWindow"] = final
        event["isWindowTerminatedEarly"] = early
        return event

    def accept(self, part: Partition, raws: list[Any], outcome: Outcome) -> Outcome | None:
        """Keep the state a successful invocation returned; an outcome of failure when it
        returned none."""
        try:
            body = _decoder.decode(outcome.response or b"null")
        except msgspec.DecodeError:
            body = None
        if not isinstance(body, dict) or "state" not in body:
            error = error_document(
                MISSING_STATE,
                'a function with tumbling windows must return {"state": {...}}',
                outcome.request_id,
            )
            return failed(Status.FUNCTION_ERROR, outcome.request_id, error)
        part.window = Window(self.start_of(raws[0].timestamp), body["state"])
        return None

    def too_big(self, part: Partition) -> bool:
        window = part.window
        return window is not None and len(_encoder.encode(window.state)) > STATE_LIMIT

    # -- closing -----------------------------------------------------------------------------

    def seconds_left(self, part: Partition) -> float | None:
        """Seconds to wait before the open window may close (``None``: no window open): until
        its end, then (its end passed, the shard not yet read past it) a short poll."""
        if part.window is None:
            return None
        left = (part.window.start + self.size) / 1000 - time.time()
        return left if left > 0 else READ_THROUGH_POLL

    def _read_past_end(self, part: Partition, end_ms: int) -> bool:
        """A read of the shard that started after ``end_ms`` has returned: no record that
        arrived in the window can still come (Lambda closes a window that way, not on the
        clock alone: a shard is read about once a second)."""
        through = self.adapter.read_through(part.tp)
        return through is not None and through * 1000 >= end_ms

    async def close_if_due(self, lane: Lane) -> bool:
        """The final invocation of the open window, if it has ended; ``True`` if one ran."""
        part = lane.part
        window = part.window
        if window is None:
            return False
        end = window.start + self.size
        if lane.buffer:  # records of the window still to come, or of a later one
            if self.start_of(lane.buffer[0].timestamp) == window.start:
                return False
        elif time.time() * 1000 < end or not self._read_past_end(part, end):
            return False
        await self.final(part)
        return True

    async def final(self, part: Partition, *, early: bool = False) -> None:
        """Invoke with the window's final state until that succeeds (Lambda holds the shard
        meanwhile); then drop the state (``early``: go on in the same window, fresh)."""
        window = part.window
        assert window is not None
        attempts = 0
        while not (self.stopping() or part.revoked):
            event = self.event(part, [], final=True, early=early)
            event["window"]["start"] = _iso(window.start)
            event["window"]["end"] = _iso(window.start + self.size)
            event["state"] = window.state
            attempts += 1
            outcome = await self.runtime.invoker.invoke_value(
                self.fn, event, new_request_id(), attempts
            )
            if outcome.ok:
                part.window = Window(window.start, {}) if early else None
                self.changed(part)
                return
            wait = backoff(attempts, *self.adapter.source.retry_backoff)
            log.info(
                "final window invocation failed, retrying",
                function=self.fn.spec.name,
                partition=self.adapter.partition_name(part.tp),
                retry_in=wait,
            )
            await anyio.sleep(wait)
