"""``Kafka``: a Kafka stream as the source of a function, and the aiokafka adapter.

The adapter knows the transport only (fetch, pause, resume, commit, seek); Lambda's stream
rules live in :mod:`eventrouter.runtime.policies.stream`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

import eventrouter.mapping_fields as mapping_fields
from eventrouter._optional import require
from eventrouter.arns import kafka_topic_arn
from eventrouter.contract.spec import Model, SourceBase, messaging
from eventrouter.errors import ConfigError, SourceError
from eventrouter.filters import Filters, compiled, maybe_json
from eventrouter.keywords import CheckedStructMeta
from eventrouter.lineage import from_headers
from eventrouter.sources.shards.stream import StartingPosition, check_stream_settings

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort


class Kafka(SourceBase, frozen=True, dict=True, metaclass=CheckedStructMeta):
    """Poll Kafka topics; batches go to the function in order, one per partition at a time.

    >>> @router.on_event(Kafka("clicks", group="analytics", batch_size=500,
    ...                        bisect_on_error=True, max_retries=3),
    ...                  on_failure=to_directory("failed"))
    ... async def count(batch: list[Click], ctx): ...

    The handler's first parameter picks the form: ``list[T]`` gets the batch (metadata in
    ``ctx.records``); ``T`` is called once per record in order (``ctx.record``); ``dict`` or
    unannotated gets Lambda's ``SelfManagedKafka`` event. ``retry_backoff`` (first, longest
    wait in seconds between retries of a failing batch) is eventrouter's own setting.
    """

    model: ClassVar[Model] = "stream"
    principal: ClassVar[str | None] = "kafka.amazonaws.com"
    named_queue: ClassVar[None] = None
    #: Lambda's Kafka mappings have neither (Kinesis and DynamoDB Streams do).
    parallelization_factor: ClassVar[int] = 1
    tumbling_window: ClassVar[float] = 0

    topics: str | tuple[str, ...]
    group: str | None = None
    bootstrap_servers: str | None = None
    batch_size: int = 100
    batching_window: float = 0.5
    starting_position: StartingPosition = "TRIM_HORIZON"
    starting_timestamp: float | None = None
    bisect_on_error: bool = False
    max_retries: int = -1
    max_record_age: float = -1
    report_batch_item_failures: bool = False
    filters: tuple[dict[str, Any], ...] = ()
    retry_backoff: tuple[float, float] = (0.5, 30.0)
    consumer_options: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        topics = (self.topics,) if isinstance(self.topics, str) else tuple(self.topics)
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise ConfigError(f"Kafka topics={self.topics!r} must name one or more topics")
        msgspec.structs.force_setattr(self, "topics", topics)
        msgspec.structs.force_setattr(self, "filters", tuple(self.filters))
        check_stream_settings(self)

    @property
    def compiled_filters(self) -> Filters:
        return compiled(self)

    @property
    def name(self) -> str:
        return ",".join(self.topics)

    def servers(self) -> str:
        servers = self.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not servers:
            raise ConfigError(
                f"Kafka({self.name!r}): no bootstrap_servers and KAFKA_BOOTSTRAP_SERVERS is not set"
            )
        return servers

    def trace_attributes(self) -> dict[str, Any]:
        attributes = messaging("kafka", self.name)
        if self.group:
            attributes["messaging.consumer.group.name"] = self.group
        return attributes

    def describe(self) -> str:
        return f"kafka:{self.name} batch={self.batch_size}"

    def mapping_document(self) -> dict[str, Any]:
        servers = self.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        return {
            "Topics": [self.topics] if isinstance(self.topics, str) else list(self.topics),
            "SelfManagedEventSource": {
                "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [s for s in servers.split(",") if s]}
            },
            **mapping_fields.stream(self),
        }

    def source_arns(self) -> list[str]:
        return [kafka_topic_arn(topic) for topic in self.topics]

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> KafkaShapes:
        # aiokafka leaves the group when the consumer is not polled within this interval;
        # the fetch loop polls all the time, but a batch may hold a partition for a timeout.
        max_poll_ms = max(300_000, int((spec.settings.timeout + 60) * 1000))
        group = self.group or f"{runtime.router.name}-{spec.name}"
        return KafkaAdapter(self, group, max_poll_ms)


class KafkaRecord(msgspec.Struct, frozen=True):
    """One record's metadata, with its decoded value: ``ctx.records[i]`` / ``ctx.record``."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: Any = None


def record_of(raw: Any, value: Any = None) -> KafkaRecord:
    return KafkaRecord(
        raw.topic,
        raw.partition,
        raw.offset,
        raw.timestamp,
        "LOG_APPEND_TIME" if raw.timestamp_type == 1 else "CREATE_TIME",
        raw.key,
        tuple(raw.headers or ()),
        value,
    )


def lambda_event(records: Iterable[Any], servers: str) -> dict[str, Any]:
    """Lambda's ``SelfManagedKafka`` event for raw aiokafka records."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        grouped.setdefault(f"{r.topic}-{r.partition}", []).append(
            {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "timestampType": "LOG_APPEND_TIME" if r.timestamp_type == 1 else "CREATE_TIME",
                "key": base64.b64encode(r.key).decode() if r.key is not None else None,
                "value": base64.b64encode(r.value).decode() if r.value is not None else None,
                "headers": [{name: list(value)} for name, value in (r.headers or ())],
            }
        )
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": servers, "records": grouped}


Assigned = Callable[[set[Any]], Awaitable[None]]


class KafkaShapes:
    """Kafka records in Lambda's shapes, for the stream policy: shared by the aiokafka adapter
    and the in-memory one of :mod:`eventrouter.testing`. Needs ``source`` and ``servers``."""

    source: Kafka
    servers: str
    group: str

    def describe(self) -> dict[str, Any]:
        return {"topics": list(self.source.topics), "group": self.group}

    def partition_name(self, tp: Any) -> str:
        return f"{tp.topic}-{tp.partition}"

    def value_of(self, raw: Any) -> bytes:
        return raw.value if raw.value is not None else b"null"

    def lambda_event(self, raws: list[Any]) -> dict[str, Any]:
        return lambda_event(raws, self.servers)

    def record(self, raw: Any, value: Any) -> KafkaRecord:
        return record_of(raw, value)

    def filter_view(self, raw: Any) -> dict[str, Any]:
        """Filter patterns see ``key`` and ``value``, JSON-decoded if they are."""
        return {"key": maybe_json(raw.key), "value": maybe_json(raw.value)}

    def window(self, tp: Any) -> bytes | None:
        return None  # Kafka sources have no tumbling windows

    def read_through(self, tp: Any) -> float | None:
        return None

    def millis_behind(self, tp: Any) -> int | None:
        return None  # Kafka says how many records behind: see highwater

    def item_identifier(self, raw: Any) -> Hashable:
        return (f"{raw.topic}-{raw.partition}", raw.offset)

    def trace_of(self, raw: Any) -> str | None:
        """The record's ``traceparent`` header (what ``to_kafka`` writes while tracing)."""
        for name, value in raw.headers or ():
            if name == "traceparent" and value:
                return bytes(value).decode("latin-1")
        return None

    def lineage_of(self, raws: list[Any]) -> int:
        # Per record, only a look at its headers: most records have none.
        return max((from_headers(raw.headers) for raw in raws if raw.headers), default=0)

    def identifier_key(self, ident: Any) -> Hashable:
        """``{"topic-partition": "orders-0", "offset": 41}`` as the handler lists it."""
        return (ident.get("topic-partition"), ident.get("offset"))

    def batch_info(self, raws: list[Any]) -> tuple[str, dict[str, Any]]:
        first, last = raws[0], raws[-1]
        return "KafkaBatchInfo", {
            "batchSize": len(raws),
            "topic": first.topic,
            "partition": first.partition,
            "firstOffset": first.offset,
            "lastOffset": last.offset,
            "bootstrapServers": self.servers,
        }


class KafkaAdapter(KafkaShapes):
    """aiokafka's consumer, reduced to what the stream policy needs
    (:class:`eventrouter.runtime.policies.stream.StreamAdapter`)."""

    def __init__(
        self, source: Kafka, group: str, max_poll_interval_ms: int, *, consumer: Any = None
    ) -> None:
        """``consumer``: an aiokafka consumer already built (tests); else :meth:`start`
        builds one."""
        self.source = source
        self.group = group
        self.servers = source.servers()
        self._max_poll_interval_ms = max_poll_interval_ms
        self._consumer: Any = consumer
        self._aiokafka = require("aiokafka", "kafka")

    async def start(self, on_assigned: Assigned, on_revoked: Assigned) -> None:
        aiokafka = self._aiokafka
        source = self.source

        class Listener(aiokafka.ConsumerRebalanceListener):  # type: ignore[name-defined,misc]
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await on_revoked(set(revoked))

            async def on_partitions_assigned(self, assigned: Any) -> None:
                await on_assigned(set(assigned))

        options: dict[str, Any] = {
            "bootstrap_servers": source.servers(),
            "group_id": self.group,
            "enable_auto_commit": False,
            "auto_offset_reset": "latest" if source.starting_position == "LATEST" else "earliest",
            "max_poll_interval_ms": self._max_poll_interval_ms,
        }
        options.update(source.consumer_options or {})
        self._consumer = aiokafka.AIOKafkaConsumer(**options)
        self._consumer.subscribe(list(source.topics), listener=Listener())
        try:
            await self._consumer.start()
        except Exception as exc:
            raise SourceError(
                f"Kafka({source.name!r}): cannot connect to {options['bootstrap_servers']}: {exc}"
            ) from exc

    async def fetch(
        self, partitions: list[Any] | None, wait: float, max_records: int
    ) -> dict[Any, list[Any]]:
        """Records of ``partitions`` (``None``: all assigned), waiting at most ``wait`` seconds."""
        data: dict[Any, list[Any]] = await self._consumer.getmany(
            *(partitions or ()), timeout_ms=int(wait * 1000), max_records=max_records
        )
        return data

    def pause(self, tp: Any) -> None:
        self._consumer.pause(tp)

    def resume(self, tp: Any) -> None:
        self._consumer.resume(tp)

    async def commit(
        self, offsets: dict[Any, int], windows: dict[Any, bytes | None] | None = None
    ) -> None:
        """``windows`` is never given: Kafka sources have no tumbling windows."""
        structs = self._aiokafka.structs
        await self._consumer.commit(
            {tp: structs.OffsetAndMetadata(offset, "") for tp, offset in offsets.items()}
        )

    async def committed(self, tp: Any) -> int | None:
        offset: int | None = await self._consumer.committed(tp)
        return offset

    async def seek_to_timestamp(self, tps: set[Any], timestamp: float) -> None:
        found = await self._consumer.offsets_for_times({tp: int(timestamp * 1000) for tp in tps})
        ends = await self._consumer.end_offsets(list(tps))
        for tp in tps:
            hit = found.get(tp)
            self._consumer.seek(tp, hit.offset if hit is not None else ends[tp])

    async def position(self, tp: Any) -> int:
        """The next offset to fetch (resolves the starting position if not done yet)."""
        offset: int = await self._consumer.position(tp)
        return offset

    def highwater(self, tp: Any) -> int | None:
        value: int | None = self._consumer.highwater(tp)
        return value

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
