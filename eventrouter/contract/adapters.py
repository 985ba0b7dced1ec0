"""What a transport provides to the policy of its model: a polled queue's (``QueueAdapter``,
for :mod:`eventrouter.runtime.policies.queue_poll`) and a stream's (``StreamAdapter``, for
:mod:`eventrouter.runtime.policies.stream`).

Kafka's adapter is :class:`eventrouter.sources.kafka.source.KafkaAdapter` (the in-memory one of the
tests :class:`eventrouter.fakes.MemoryStreamAdapter`); Kinesis's and DynamoDB Streams' are
shard readers (:class:`eventrouter.sources.shards.reader.ShardReader`): shards are their partitions,
sequence numbers (as integers) their offsets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eventrouter.contract.spec import QueueInfo

Assigned = Callable[[set[Any]], Awaitable[None]]


class RecordShapes(Protocol):
    """What the policies ask of a transport's records (streams' and polled queues' alike):
    the batch as Lambda's event, each record's metadata, what filters see, identities in a
    partial batch response, the trace and lineage they carry."""

    def value_of(self, raw: Any) -> bytes | str:
        """The payload a typed handler's value is decoded from."""
        ...

    def lambda_event(self, raws: list[Any]) -> dict[str, Any]:
        """Lambda's event for a batch of records (the raw handler form)."""
        ...

    def record(self, raw: Any, value: Any) -> Any:
        """``ctx.records[i]``: one record's metadata with its decoded value."""
        ...

    def filter_view(self, raw: Any) -> dict[str, Any]:
        """What filter patterns see of a record."""
        ...

    def item_identifier(self, raw: Any) -> Hashable:
        """A record's identity in a ``batchItemFailures`` response..."""
        ...

    def identifier_key(self, ident: Any) -> Hashable:
        """...and an ``itemIdentifier`` as the handler wrote it, in the same terms."""
        ...

    def trace_of(self, raw: Any) -> str | None:
        """The trace a record carries (a ``traceparent``), where its transport has one."""
        ...

    def lineage_of(self, raws: list[Any]) -> int:
        """The depth of the deepest invocation that wrote a batch's records, where their
        transport carries one (``eventrouter/lineage.py``; 0 otherwise)."""
        ...


class StreamAdapter(RecordShapes, Protocol):
    """A stream transport. Partitions (``tp``) are opaque hashable values to the policy;
    records have ``offset``, ``timestamp`` (ms since the epoch) and ``value`` (bytes or
    ``None``), as aiokafka's ``ConsumerRecord`` has."""

    #: The source's settings: batch size and window, retries, bisect, ages, filters...
    source: Any

    async def start(self, on_assigned: Assigned, on_revoked: Assigned) -> None: ...

    async def fetch(
        self, partitions: list[Any] | None, wait: float, max_records: int
    ) -> dict[Any, list[Any]]: ...

    def pause(self, tp: Any) -> None: ...

    def resume(self, tp: Any) -> None: ...

    async def commit(
        self, offsets: dict[Any, int], windows: dict[Any, bytes | None] | None = None
    ) -> None:
        """Store the checkpoints (the next offset to process), with the open tumbling
        windows when the source has them."""
        ...

    def window(self, tp: Any) -> bytes | None:
        """The tumbling window stored with ``tp``'s checkpoint (sources with windows)."""
        ...

    def read_through(self, tp: Any) -> float | None:
        """When the last read of ``tp`` whose records were handed out started, epoch seconds
        (sources with windows: a window closes once its partition is read past its end)."""
        ...

    async def committed(self, tp: Any) -> int | None: ...

    async def seek_to_timestamp(self, tps: set[Any], timestamp: float) -> None: ...

    def highwater(self, tp: Any) -> int | None:
        """The partition's log end offset (Kafka), when known."""
        ...

    def millis_behind(self, tp: Any) -> int | None:
        """How far behind the stream's tip reading is, when the service says (Kinesis)."""
        ...

    async def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """What the start-up log line says of the source."""
        ...

    def partition_name(self, tp: Any) -> str: ...

    def batch_info(self, raws: list[Any]) -> tuple[str, dict[str, Any]]:
        """The batch's info in a failure record (``("KafkaBatchInfo", {...})``)."""
        ...


class QueueAdapter(RecordShapes, Protocol):
    """A polled queue's transport. Messages are dicts in SQS's ``ReceiveMessage`` shape
    (``MessageId``, ``ReceiptHandle``, ``Body``, ``Attributes``, ``MessageAttributes``)."""

    #: The source's settings: batch size and window, pollers, filters...
    source: Any
    #: Whether messages of one group must be handled in order (SQS FIFO).
    fifo: bool
    #: How errors name the source: ``Sqs('orders')``.
    label: str

    async def connect(self) -> QueueInfo: ...

    async def receive(
        self, max_messages: int, wait_seconds: int, attributes: list[str]
    ) -> list[dict[str, Any]]: ...

    async def delete(self, messages: list[dict[str, Any]]) -> list[str]:
        """Delete ``messages``; returns the ids that could not be deleted."""
        ...

    def attempt_of(self, raws: list[dict[str, Any]]) -> int:
        """How many times a batch's messages were received (the most of any)."""
        ...

    def group_of(self, raw: dict[str, Any]) -> str:
        """The message's group (FIFO): messages of one group run in order."""
        ...
