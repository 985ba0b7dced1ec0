"""The asynchronous invoke queue on SQS, so that several hosts share it.

``Router(async_queue=Sqs("eventrouter-async"))``. One SQS queue holds the events of every
function (the store queue's name travels as a message attribute). SQS messages cannot be
changed, so a retry or a held record is a new message, sent with ``DelaySeconds`` (at most
15 min; a longer wait is finished by a visibility change when it is received too early),
after which the old one is deleted. A received event for a function with no free slot is
made visible again at once. Leases are SQS's visibility timeout: a host that dies leaves
its events to reappear. Several hosts may consume one queue; there is no consumer lock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import structlog

from eventrouter._optional import require
from eventrouter.lineage import produced
from eventrouter.observability.tracing import current_trace
from eventrouter.services.clients import sqs_queue_url
from eventrouter.sources.sqs.source import Sqs
from eventrouter.store.base import StoredEvent

log = structlog.get_logger("eventrouter.store")

_MAX_DELAY = 900
_MAX_VISIBILITY = 43_200


def _attr(value: str | float, kind: str = "String") -> dict[str, str]:
    return {"DataType": kind, "StringValue": str(value)}


class SqsStore:
    """The :class:`~eventrouter.store.base.Store` protocol on SQS."""

    def __init__(self, source: Sqs, *, consumer: bool, lease_seconds: float = 60.0) -> None:
        self.source = source
        self.consumer = consumer
        self.lease_seconds = lease_seconds
        self.on_enqueued: Callable[[set[str]], None] | None = None
        self.url = ""
        self._client: Any = None
        self._context: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        session = require("aiobotocore.session", "aws").get_session()
        self._context = session.create_client(
            "sqs", region_name=self.source.region, endpoint_url=self.source.endpoint_url
        )
        self._client = await self._context.__aenter__()
        self.url = await sqs_queue_url(self._client, self.source.queue)

    async def close(self) -> None:
        await self.flush()
        if self._context is not None:
            await self._context.__aexit__(None, None, None)
            self._context = None

    async def flush(self) -> None:
        """Wait until every acknowledgement and re-send sent so far is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                # The event reappears after its visibility timeout: processed again, not lost.
                log.error("sqs queue operation failed", error=repr(t.exception()))

        task.add_done_callback(done)

    # -- producing ---------------------------------------------------------------------------

    async def enqueue(
        self,
        queue_name: str,
        request_id: str,
        payload: bytes,
        *,
        now: float | None = None,
        enqueued_at: float | None = None,
        attempts: int = 0,
        throttles: int = 0,
        due: float | None = None,
        record: bytes | None = None,
        record_kind: str | None = None,
        trace: str | None = None,
        lineage: int | None = None,
    ) -> None:
        """Send one event; returns once SQS has it."""
        t = now if now is not None else time.time()
        due = t if due is None else due
        attributes = {
            "queue": _attr(queue_name),
            "request_id": _attr(request_id),
            "enqueued_at": _attr(enqueued_at if enqueued_at is not None else t, "Number"),
            "attempts": _attr(attempts, "Number"),
            "throttles": _attr(throttles, "Number"),
            "due": _attr(due, "Number"),
            "lineage": _attr(produced() if lineage is None else lineage, "Number"),
        }
        trace = trace or current_trace()
        if trace is not None:
            attributes["trace"] = _attr(trace)
        if record is not None and record_kind is not None:
            attributes["record"] = _attr(record.decode())
            attributes["record_kind"] = _attr(record_kind)
        delay = min(_MAX_DELAY, max(0, math.ceil(due - t)))
        await self._client.send_message(
            QueueUrl=self.url,
            MessageBody=payload.decode(),
            MessageAttributes=attributes,
            DelaySeconds=delay,
        )
        if self.on_enqueued is not None and record is None and attempts == 0 and throttles == 0:
            self.on_enqueued({queue_name})

    # -- consuming ---------------------------------------------------------------------------

    async def claim(self, requests: Iterable[tuple[list[str], int]]) -> list[StoredEvent]:
        """Receive due events for the queues asked for, up to each request's limit."""
        plan = [(queues, limit) for queues, limit in requests if queues and limit > 0]
        if not plan:
            return []
        remaining = [limit for _, limit in plan]
        entry = {q: i for i, (queues, _) in enumerate(plan) for q in queues}
        response = await self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=min(10, sum(remaining)),
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            VisibilityTimeout=math.ceil(self.lease_seconds),
        )
        now = time.time()
        out: list[StoredEvent] = []
        for message in response.get("Messages", []):
            attrs = {
                k: v.get("StringValue", "")
                for k, v in (message.get("MessageAttributes") or {}).items()
            }
            handle = message["ReceiptHandle"]
            due = float(attrs.get("due", now))
            index = entry.get(attrs.get("queue", ""))
            if due > now + 0.5:  # received early (waits over 15 min): hide it until due
                wait = min(_MAX_VISIBILITY, math.ceil(due - now))
                self._spawn(
                    self._client.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=wait
                    )
                )
                continue
            if index is None or remaining[index] <= 0:  # not ours, or no free slot: put back
                self._spawn(
                    self._client.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0
                    )
                )
                continue
            remaining[index] -= 1
            record = attrs.get("record")
            event = StoredEvent(
                message["MessageId"],
                attrs["queue"],
                attrs.get("request_id", message["MessageId"]),
                message.get("Body", "").encode(),
                float(attrs.get("enqueued_at", now)),
                int(float(attrs.get("attempts", 0))),
                int(float(attrs.get("throttles", 0))),
                record.encode() if record else None,
                attrs.get("record_kind"),
                attrs.get("trace"),
                int(float(attrs.get("lineage", 0))),
            )
            event.handle = handle
            out.append(event)
        return out

    def ack(self, event: StoredEvent) -> None:
        self._spawn(self._client.delete_message(QueueUrl=self.url, ReceiptHandle=event.handle))

    def reschedule(self, event: StoredEvent, due: float, attempts: int, throttles: int) -> None:
        self._spawn(self._resend(event, due, attempts, throttles, event.record, event.record_kind))

    def hold_record(
        self, event: StoredEvent, record: bytes, kind: str, due: float, deliveries: int
    ) -> None:
        self._spawn(self._resend(event, due, event.attempts, deliveries, record, kind))

    async def _resend(
        self,
        event: StoredEvent,
        due: float,
        attempts: int,
        throttles: int,
        record: bytes | None,
        kind: str | None,
    ) -> None:
        await self.enqueue(
            event.queue,
            event.request_id,
            event.payload,
            enqueued_at=event.enqueued_at,
            attempts=attempts,
            throttles=throttles,
            due=due,
            record=record,
            record_kind=kind,
            trace=event.trace,
            lineage=event.lineage,
        )
        await self._client.delete_message(QueueUrl=self.url, ReceiptHandle=event.handle)

    # -- inspection --------------------------------------------------------------------------

    async def count(self, queue_name: str | None = None) -> int:
        """Events on the SQS queue, of every store queue (SQS cannot count by attribute)."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = (
            await self._client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)
        )["Attributes"]
        return sum(int(attributes.get(n, 0)) for n in names)

    async def depths(self) -> dict[str, tuple[int, float | None]]:
        """The whole SQS queue under its name (SQS counts neither by attribute nor by age)."""
        return {f"sqs:{self.source.queue}": (await self.count(), None)}

    async def pop(self, queue_name: str, limit: int = 100) -> list[StoredEvent]:
        raise NotImplementedError(
            "pop() reads the embedded queue; an SQS queue is read by its consumers"
        )
