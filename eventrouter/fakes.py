"""In-memory pull sources: the stream and queue rules, tested without a broker.

``MemoryStream`` takes every setting of :class:`~eventrouter.sources.kafka.source.Kafka` and
``MemoryQueue`` every setting of :class:`~eventrouter.sources.sqs.source.Sqs`; their adapters keep
the records in the source object, so a test appends, runs the router and looks at what was
committed or deleted. The policies are the real ones (``runtime/policies/stream.py``,
``runtime/policies/queue_poll.py``); only the transport is replaced::

    stream = MemoryStream("orders", batch_size=10, max_retries=2, retry_backoff=(0, 0))

    @router.on_event(stream, on_failure=to_queue("failed"))
    async def handle(batch: list[Order]) -> None: ...

    stream.append({"id": 1})
    async with run_router(router) as app:
        await stream.wait_committed(0, 1)

Re-exported by :mod:`eventrouter.testing`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import anyio
import anyio.lowlevel
import msgspec

from eventrouter.arns import region_of, sqs_arn
from eventrouter.contract.spec import Model, QueueInfo
from eventrouter.sources.kafka.source import Kafka, KafkaShapes
from eventrouter.sources.sqs.source import Sqs, SqsAdapter

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort

_encoder = msgspec.json.Encoder()


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class MemoryRecord(NamedTuple):
    """A record as aiokafka's ``ConsumerRecord`` has it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class _Changed:
    """An event a waiter can wait on again after each change."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    async def wait(self, timeout: float | None = None) -> None:
        with anyio.move_on_after(timeout):
            await self._event.wait()


def _encoded(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return _encoder.encode(value)


class MemoryStream(Kafka, frozen=True, dict=True):
    """A Kafka-like stream held in memory: ``partitions`` partitions of topic ``topics``."""

    model: ClassVar[Model] = "stream"
    #: Not checked against resource policies (there is no service behind it).
    principal: ClassVar[str | None] = None

    partitions: int = 1

    @property
    def log(self) -> list[list[MemoryRecord]]:
        """Every record appended, per partition."""
        if "_log" not in self.__dict__:
            self.__dict__["_log"] = [[] for _ in range(self.partitions)]
            self.__dict__["_committed"] = {}
            self.__dict__["_changed"] = _Changed()
        log: list[list[MemoryRecord]] = self.__dict__["_log"]
        return log

    @property
    def committed(self) -> dict[int, int]:
        """The checkpoint per partition: the next offset to process."""
        self.log  # noqa: B018 - creates the state
        committed: dict[int, int] = self.__dict__["_committed"]
        return committed

    @property
    def changed(self) -> _Changed:
        self.log  # noqa: B018 - creates the state
        changed: _Changed = self.__dict__["_changed"]
        return changed

    def append(
        self,
        value: Any,
        *,
        partition: int = 0,
        key: bytes | None = None,
        age: float = 0.0,
        headers: tuple[tuple[str, bytes], ...] = (),
    ) -> int:
        """Append a record (JSON-encoded unless bytes); its offset. ``age`` backdates it."""
        records = self.log[partition]
        record = MemoryRecord(
            self.name,
            partition,
            len(records),
            int((time.time() - age) * 1000),
            0,
            key,
            _encoded(value),
            headers,
        )
        records.append(record)
        self.changed.set()
        return record.offset

    async def wait_committed(self, partition: int, offset: int, timeout: float = 10.0) -> None:
        """Wait until the checkpoint of ``partition`` reaches ``offset``."""
        with anyio.fail_after(timeout):
            while self.committed.get(partition, 0) < offset:
                await self.changed.wait()

    def source_arns(self) -> list[str]:
        return []

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> MemoryStreamAdapter:
        return MemoryStreamAdapter(self, f"{runtime.router.name}-{spec.name}")

    def describe(self) -> str:
        return f"memory-stream:{self.name} batch={self.batch_size}"


class MemoryStreamAdapter(KafkaShapes):
    """The stream adapter of a :class:`MemoryStream` (every partition assigned at once)."""

    source: MemoryStream

    def __init__(self, source: MemoryStream, group: str) -> None:
        self.source = source
        self.servers = "memory"
        self.group = group
        self.positions: dict[TopicPartition, int] = {}
        self.paused: set[TopicPartition] = set()

    async def start(self, on_assigned: Any, on_revoked: Any) -> None:
        source = self.source
        tps = {TopicPartition(source.name, i) for i in range(source.partitions)}
        for tp in tps:
            start = source.committed.get(tp.partition)
            if start is None:
                start = len(source.log[tp.partition]) if source.starting_position == "LATEST" else 0
            self.positions[tp] = start
        await on_assigned(tps)

    async def fetch(
        self, partitions: list[Any] | None, wait: float, max_records: int
    ) -> dict[Any, list[Any]]:
        deadline = time.monotonic() + wait
        while True:
            data: dict[Any, list[Any]] = {}
            for tp, position in self.positions.items():
                if tp in self.paused:
                    continue
                records = self.source.log[tp.partition][position : position + max_records]
                if records:
                    data[tp] = records
                    self.positions[tp] = position + len(records)
            left = deadline - time.monotonic()
            if data or left <= 0:
                await anyio.lowlevel.checkpoint()  # a real fetch always yields
                return data
            await self.source.changed.wait(left)

    def pause(self, tp: Any) -> None:
        self.paused.add(tp)

    def resume(self, tp: Any) -> None:
        self.paused.discard(tp)

    async def commit(
        self, offsets: dict[Any, int], windows: dict[Any, bytes | None] | None = None
    ) -> None:
        for tp, offset in offsets.items():
            self.source.committed[tp.partition] = offset
        self.source.changed.set()

    async def committed(self, tp: Any) -> int | None:
        return self.source.committed.get(tp.partition)

    async def seek_to_timestamp(self, tps: set[Any], timestamp: float) -> None:
        for tp in tps:
            records = self.source.log[tp.partition]
            self.positions[tp] = next(
                (r.offset for r in records if r.timestamp >= timestamp * 1000), len(records)
            )

    def highwater(self, tp: Any) -> int | None:
        return len(self.source.log[tp.partition])

    async def stop(self) -> None:
        pass


class MemoryQueue(Sqs, frozen=True, dict=True):
    """An SQS-like queue held in memory. Received messages stay in flight until deleted;
    :meth:`expire_visibility` makes the undeleted ones visible again (as the end of SQS's
    visibility timeout would). An empty receive waits ``wait_time_seconds`` (at least
    ``latency``) for a message."""

    model: ClassVar[Model] = "queue"
    principal: ClassVar[str | None] = None

    visibility_timeout: int = 30
    latency: float = 0.005

    def _state(self) -> dict[str, Any]:
        if "_visible" not in self.__dict__:
            self.__dict__.update(
                _visible=[], _in_flight={}, _deleted=[], _receives=[], _changed=_Changed()
            )
        return self.__dict__

    @property
    def visible(self) -> list[dict[str, Any]]:
        """Messages waiting to be received."""
        visible: list[dict[str, Any]] = self._state()["_visible"]
        return visible

    @property
    def in_flight(self) -> dict[str, dict[str, Any]]:
        """Received and not deleted, by receipt handle."""
        in_flight: dict[str, dict[str, Any]] = self._state()["_in_flight"]
        return in_flight

    @property
    def deleted(self) -> list[dict[str, Any]]:
        deleted: list[dict[str, Any]] = self._state()["_deleted"]
        return deleted

    @property
    def receives(self) -> list[int]:
        """How many messages each receive returned, in order."""
        receives: list[int] = self._state()["_receives"]
        return receives

    @property
    def changed(self) -> _Changed:
        changed: _Changed = self._state()["_changed"]
        return changed

    def send(self, body: Any, *, group: str | None = None, **attributes: str) -> str:
        """Add a message (JSON-encoded unless a string); its message id."""
        count = self._state().setdefault("_ids", itertools.count(1))
        message_id = f"m-{next(count)}"
        attrs = {"SentTimestamp": str(int(time.time() * 1000)), **attributes}
        if group is not None:
            attrs["MessageGroupId"] = group
        text = body if isinstance(body, str) else _encoder.encode(body).decode()
        self.visible.append(
            {"MessageId": message_id, "Body": text, "Attributes": attrs, "MessageAttributes": {}}
        )
        self.changed.set()
        return message_id

    def expire_visibility(self) -> None:
        """Every message in flight becomes visible again."""
        self.visible[:0] = list(self.in_flight.values())
        self.in_flight.clear()
        self.changed.set()

    async def wait_deleted(self, count: int, timeout: float = 10.0) -> None:
        await self.wait_until(lambda: len(self.deleted) >= count, timeout)

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds, checked after every receive, send and delete."""
        with anyio.fail_after(timeout):
            while not condition():
                await self.changed.wait()

    def source_arns(self) -> list[str]:
        return []

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> MemoryQueueAdapter:
        return MemoryQueueAdapter(self)

    def describe(self) -> str:
        return f"memory-queue:{self.name} batch={self.batch_size}"


class MemoryQueueAdapter(SqsAdapter):
    """The queue adapter of a :class:`MemoryQueue` (Lambda's event shapes are SQS's)."""

    source: MemoryQueue

    def __init__(self, source: MemoryQueue) -> None:
        self.source = source
        self.fifo = source.fifo
        self.label = f"MemoryQueue({source.queue!r})"
        self.url = f"memory://{source.name}"
        self.arn = sqs_arn(source.name)
        self.region = region_of(self.arn)
        self._handles = itertools.count(1)

    async def connect(self) -> QueueInfo:
        return QueueInfo(self.url, self.arn, self.source.visibility_timeout)

    async def receive(
        self, max_messages: int, wait_seconds: int, attributes: list[str]
    ) -> list[dict[str, Any]]:
        source = self.source
        source.changed.set()  # a poller is (back) at the queue
        deadline = time.monotonic() + max(wait_seconds, source.latency)
        await anyio.sleep(source.latency)
        while not source.visible and time.monotonic() < deadline:
            await source.changed.wait(deadline - time.monotonic())
        taken = source.visible[:max_messages]
        del source.visible[:max_messages]
        out = []
        for message in taken:
            handle = f"h-{next(self._handles)}"
            attrs = message["Attributes"]
            attrs["ApproximateReceiveCount"] = str(int(attrs.get("ApproximateReceiveCount", 0)) + 1)
            source.in_flight[handle] = message
            out.append({**message, "ReceiptHandle": handle})
        source.receives.append(len(out))
        source.changed.set()
        return out

    async def delete(self, messages: list[dict[str, Any]]) -> list[str]:
        source = self.source
        for message in messages:
            original = source.in_flight.pop(message["ReceiptHandle"], None)
            if original is not None:
                source.deleted.append(original)
        source.changed.set()
        return []
