"""One batch of a stream partition under Lambda's rules (lambda-semantics.md §2): filters,
decoding, the invocation, retries with backoff, bisect, partial batch responses, maximum
retries and record age, and the failure record. The partition's life (fetching, buffering,
checkpoints) is :mod:`eventrouter.runtime.policies.stream`'s.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog

from eventrouter.contract.adapters import StreamAdapter
from eventrouter.contract.spec import pull_decoder
from eventrouter.events import new_request_id
from eventrouter.outcomes import (
    RECURSION_CONDITION,
    Condition,
    Outcome,
    Status,
    batch_item_failure,
    invocation_record,
    stream_next,
    unmarshal_error,
)
from eventrouter.runtime.policies.batch import batch_event, failed_indices, invoke_batch
from eventrouter.runtime.policies.partitions import Batch, Lane
from eventrouter.runtime.policies.stream_window import Windows

if TYPE_CHECKING:
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.runtime.policies.port import PolicyPort

log = structlog.get_logger("eventrouter.stream")

_encoder = msgspec.json.Encoder()
_VALUE = operator.attrgetter("value")


class BatchRunner:
    """Runs the batches of one function's stream source until each is done."""

    def __init__(
        self,
        runtime: PolicyPort,
        state: FunctionState,
        adapter: StreamAdapter,
        *,
        stopping: Callable[[], bool],
        mark_done: Callable[[Lane, int], None],
        windows: Windows | None = None,
    ) -> None:
        self.runtime = runtime
        self.state = state
        self.adapter = adapter
        self.source = adapter.source
        self.form, self.decoder = pull_decoder(state.spec)
        self._filters = self.source.compiled_filters or None
        #: Whether the source is stopping (a batch waiting for a retry gives up).
        self.stopping = stopping
        #: Records below an offset are done: the checkpoint may pass them.
        self.mark_done = mark_done
        #: Tumbling windows (``tumbling_window``): the event's window and state.
        self.windows = windows

    async def run(self, lane: Lane, raws: list[Any]) -> bool:
        """Filter, decode and run a batch; ``True`` once all of it is done."""
        if self._filters is not None:
            view = self.adapter.filter_view
            kept = [raw for raw in raws if self._filters.match(view(raw))]
            if len(kept) < len(raws):
                self.runtime.metrics.add(
                    "FilteredRecords", self.state.spec.name, len(raws) - len(kept)
                )
            raws = kept
        decoder = self.decoder
        if decoder is None:
            batch = Batch(raws, None)
        else:
            try:  # the whole batch at C speed; on any failure, record by record
                # (records' ``value``: the stream record contract, read at C speed here)
                batch = Batch(raws, list(map(decoder.decode, map(_VALUE, raws))))
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                batch = await self._decode_each(lane, raws, decoder)
        return await self._run_batch(lane, batch) if batch.raws else True

    async def _decode_each(
        self, lane: Lane, raws: list[Any], decoder: msgspec.json.Decoder[Any]
    ) -> Batch:
        """Decode one by one: the records that fail go to ``on_failure`` at once."""
        good: list[Any] = []
        values: list[Any] = []
        for raw in raws:
            try:
                values.append(decoder.decode(self.adapter.value_of(raw)))
                good.append(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                body = unmarshal_error(new_request_id(), exc)
                self.runtime.metrics.add("InvalidRecords", self.state.spec.name)
                await self._fail(
                    lane, Batch([raw], None), "InvalidPayload", _encoder.encode(body), 0
                )
        return Batch(good, values)

    async def _run_batch(self, lane: Lane, items: Batch) -> bool:
        """Invoke until the batch is done (success or failure record out): ``True``.

        ``False`` when the source stops or the partition is revoked while the batch waits for
        a retry: its records are not done, the checkpoint stays, and they are read again.
        """
        source = self.source
        attempts = 0
        while True:
            outcome, failed_from = await self._invoke(lane, items, attempts + 1)
            if outcome is None:
                return True
            if self.stopping() or lane.part.revoked:
                return False
            if outcome.status is Status.THROTTLED:  # not a retry: wait for a free slot
                with anyio.move_on_after(1.0):
                    await self.runtime.slots.wait_released()
                continue
            if outcome.status is Status.RECURSIVE:  # not run: neither split nor retried
                await self._fail(lane, items, RECURSION_CONDITION, outcome.response, attempts + 1)
                return True
            if failed_from > 0:
                self.mark_done(lane, items.raws[failed_from].offset)
                items = items[failed_from:]
            if source.bisect_on_error and len(items) > 1:
                mid = len(items) // 2
                return await self._run_batch(lane, items[:mid]) and await self._run_batch(
                    lane, items[mid:]
                )
            attempts += 1
            wait = stream_next(
                attempts,
                oldest=items.raws[0].timestamp / 1000,
                now=time.time(),
                max_retries=source.max_retries,
                max_record_age=source.max_record_age,
                retry_backoff=source.retry_backoff,
            )
            if isinstance(wait, str):  # the condition that ends the retries
                await self._fail(lane, items, wait, outcome.response, attempts)
                return True
            log.info(
                "batch failed, retrying",
                function=self.state.spec.name,
                partition=self.adapter.partition_name(lane.part.tp),
                first_offset=items.raws[0].offset,
                size=len(items),
                attempt=attempts,
                retry_in=wait,
                error=outcome.error["errorType"] if outcome.error else None,
            )
            with anyio.move_on_after(wait):
                await self._stopped_or_revoked(lane)

    async def _stopped_or_revoked(self, lane: Lane) -> None:
        while not (self.stopping() or lane.part.revoked):
            lane.wake.clear()
            await lane.wake.wait()

    async def _invoke(self, lane: Lane, items: Batch, attempt: int) -> tuple[Outcome | None, int]:
        """Invoke once: ``(None, 0)`` on success, else the outcome and the first failed index."""
        adapter = self.adapter
        windows = self.windows
        records: Any
        if windows is not None:
            event: Any = windows.event(lane.part, items.raws)
            records = None
        else:
            event, records = batch_event(adapter, self.form == "raw", items.raws, items.values)
        outcome = await invoke_batch(
            self.runtime.invoker,
            self.state,
            adapter,
            items.raws,
            event,
            records,
            attempt,
            per_record=self.form == "record",
        )
        if outcome.status is Status.SUCCESS:
            if windows is not None:
                refused = windows.accept(lane.part, items.raws, outcome)
                if refused is not None:
                    return refused, 0
                if windows.too_big(lane.part):
                    await windows.final(lane.part, early=True)
            if not self.source.report_batch_item_failures or self.form == "record":
                return None, 0
            failed = failed_indices(adapter, outcome, items.raws)
            if not failed:
                return None, 0
            # Processing restarts at the lowest failed record.
            return batch_item_failure(outcome.request_id), failed[0]
        if outcome.status is Status.THROTTLED:
            return outcome, 0
        return outcome, outcome.failed_index if self.form == "record" else 0

    async def _fail(
        self,
        lane: Lane,
        items: Batch,
        condition: Condition,
        response: bytes | None,
        attempts: int,
    ) -> None:
        """Send the failure record of ``items`` to ``on_failure``; the records are then done."""
        spec = self.state.spec
        self.runtime.metrics.add("StreamBatchesFailed", spec.name)
        destination = spec.settings.on_failure
        kind, info = self.adapter.batch_info(items.raws)
        if destination is None:
            log.warning(
                "records failed, no on_failure destination",
                function=spec.name,
                condition=condition,
                batch=info,
            )
            return
        record = invocation_record(
            request_id=new_request_id(),
            function_name=spec.name,
            condition=condition,
            invoke_count=attempts,
            request_payload=None,
            response_payload=response,
            function_error=True,
            batch_info=(kind, info),
        )
        key = f"{self.adapter.partition_name(lane.part.tp)}-{items.raws[0].offset}"
        # The checkpoint may not pass these records before their record is out.
        await self.runtime.deliveries.deliver_until_done(
            spec, "on_failure", destination, record, key
        )
