"""The store protocol: what the asynchronous policy asks of a durable queue.

Two implementations: :class:`~eventrouter.store.sqlite.EventStore` (embedded, the default)
and :class:`~eventrouter.store.sqs.SqsStore` (one SQS queue shared by several hosts). One
contract test suite (``tests/unit/test_store_contract.py``) runs against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol


class StoredEvent:
    """One event as it stands in the store."""

    __slots__ = (
        "attempts",
        "enqueued_at",
        "handle",
        "id",
        "lineage",
        "payload",
        "queue",
        "record",
        "record_kind",
        "request_id",
        "throttles",
        "trace",
    )

    def __init__(
        self,
        id: int,
        queue: str,
        request_id: str,
        payload: bytes,
        enqueued_at: float,
        attempts: int,
        throttles: int,
        record: bytes | None,
        record_kind: str | None,
        trace: str | None = None,
        lineage: int = 0,
    ) -> None:
        self.id = id
        self.queue = queue
        self.request_id = request_id
        self.payload = payload
        self.enqueued_at = enqueued_at
        #: Invocations that ended in a function error so far.
        self.attempts = attempts
        #: Times the event was throttled so far (not counted as retries).
        self.throttles = throttles
        #: A final record whose delivery to a destination is still owed.
        self.record = record
        self.record_kind = record_kind
        #: The trace the event continues (a W3C ``traceparent``), while tracing.
        self.trace = trace
        #: The depth of the invocation that made the event (``eventrouter/lineage.py``).
        self.lineage = lineage
        #: Backend data: the receipt handle of an SQS-backed queue.
        self.handle: Any = None

    def __repr__(self) -> str:
        return (
            f"StoredEvent({self.id}, {self.queue!r}, {self.request_id!r}, attempts={self.attempts})"
        )


class Store(Protocol):
    """A durable queue of events, leased by a consumer until acknowledged.

    ``enqueue`` returns once the event is durable. ``claim`` leases due events;
    ``ack`` (final and delivered), ``reschedule`` (due again later) and ``hold_record`` (final,
    record not yet delivered) end a lease and may be applied lazily: ``flush`` waits for them.
    """

    #: Called after events were added by this process, with their queue names.
    on_enqueued: Callable[[set[str]], None] | None

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(
        self,
        queue_name: str,
        request_id: str,
        payload: bytes,
        *,
        now: float | None = None,
        trace: str | None = None,
    ) -> None:
        """Add one event, durable on return; it continues ``trace``, or else the current
        span's trace while tracing."""
        ...

    async def claim(self, requests: Iterable[tuple[list[str], int]]) -> list[StoredEvent]:
        """Lease due events: for each ``(queues, limit)`` up to ``limit`` of them, oldest first."""
        ...

    def ack(self, event: StoredEvent) -> None: ...

    def reschedule(self, event: StoredEvent, due: float, attempts: int, throttles: int) -> None: ...

    def hold_record(
        self, event: StoredEvent, record: bytes, kind: str, due: float, deliveries: int
    ) -> None: ...

    async def flush(self) -> None: ...

    async def count(self, queue_name: str | None = None) -> int: ...

    async def depths(self) -> dict[str, tuple[int, float | None]]:
        """Per queue: how many events it holds and when its oldest was enqueued (``None``
        where the backend cannot tell)."""
        ...

    async def pop(self, queue_name: str, limit: int = 100) -> list[StoredEvent]: ...


def function_queue(name: str) -> str:
    """The store queue holding asynchronous invocations of function ``name``."""
    return f"fn:{name}"
