"""The settings every stream source shares (Kafka, Kinesis, DynamoDB Streams), checked in one
place with Lambda's names, defaults and ranges (lambda-semantics.md §2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

import eventrouter.mapping_fields as mapping_fields
from eventrouter.arns import role_arn
from eventrouter.config import check_int, check_range
from eventrouter.contract.spec import Model, SourceBase
from eventrouter.errors import ConfigError
from eventrouter.filters import Filters, compiled
from eventrouter.keywords import CheckedStructMeta

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort
    from eventrouter.sources.shards.checkpoints import Checkpoints
    from eventrouter.sources.shards.reader import ShardReader, ShardTransport

StartingPosition = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")


def check_stream_settings(source: Any) -> None:
    """Raise :class:`ConfigError` for a stream setting out of Lambda's range."""
    check_int("batch_size", source.batch_size, 1, 10_000)
    check_range("batching_window", source.batching_window, 0, 300, unit="seconds")
    if source.starting_position not in STARTING_POSITIONS:
        raise ConfigError(
            f"starting_position={source.starting_position!r} must be TRIM_HORIZON, LATEST "
            "or AT_TIMESTAMP"
        )
    if (source.starting_position == "AT_TIMESTAMP") != (source.starting_timestamp is not None):
        raise ConfigError(
            "starting_timestamp (epoch seconds) goes with starting_position='AT_TIMESTAMP'"
        )
    if source.max_retries != -1:
        check_int("max_retries", source.max_retries, 0, 10_000)
    if source.max_record_age != -1:
        check_range("max_record_age", source.max_record_age, 60, 604_800, unit="seconds")
    first, longest = source.retry_backoff
    check_range("retry_backoff", first, 0, 3600, unit="seconds")
    check_range("retry_backoff", longest, first, 3600, unit="seconds")
    check_int("parallelization_factor", source.parallelization_factor, 1, 10)
    check_range("tumbling_window", source.tumbling_window, 0, 900, unit="seconds")
    if source.tumbling_window and source.parallelization_factor > 1:
        raise ConfigError(
            "tumbling_window keeps one state per shard: it needs parallelization_factor=1"
        )
    source.compiled_filters  # noqa: B018 - validates the patterns now


class ShardedStream(SourceBase, frozen=True, dict=True, kw_only=True, metaclass=CheckedStructMeta):
    """The settings of a sharded stream (Kinesis, DynamoDB Streams), Lambda's names and
    defaults; ``retry_backoff``, ``poll_interval`` (idle wait between reads of a shard,
    Lambda's one read a second), ``discovery_interval`` (how often new shards are looked
    for), ``lease_table`` (several hosts: shard leases and checkpoints on DynamoDB, also
    taken from ``Router(lease_table=...)``) and ``lease_duration`` (seconds a dead host's
    shards wait before another takes them) are eventrouter's own."""

    model: ClassVar[Model] = "stream"
    named_queue: ClassVar[None] = None

    batch_size: int = 100
    batching_window: float = 0.0
    starting_position: StartingPosition = "TRIM_HORIZON"
    starting_timestamp: float | None = None
    parallelization_factor: int = 1
    bisect_on_error: bool = False
    max_retries: int = -1
    max_record_age: float = -1
    report_batch_item_failures: bool = False
    tumbling_window: float = 0
    filters: tuple[dict[str, Any], ...] = ()
    retry_backoff: tuple[float, float] = (0.5, 30.0)
    endpoint_url: str | None = None
    region: str | None = None
    poll_interval: float = 1.0
    discovery_interval: float = 30.0
    lease_table: str | None = None
    lease_duration: float = 10.0

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "filters", tuple(self.filters))
        check_stream_settings(self)
        check_range("poll_interval", self.poll_interval, 0, 60, unit="seconds")
        check_range("discovery_interval", self.discovery_interval, 0.01, 3600, unit="seconds")
        check_range("lease_duration", self.lease_duration, 0.3, 3600, unit="seconds")

    @property
    def compiled_filters(self) -> Filters:
        return compiled(self)

    #: The reader of this stream with its records' shapes (a ``ShardReader`` subclass).
    adapter_class: ClassVar[type[ShardReader]]

    @property
    def stream_name(self) -> str:
        raise NotImplementedError

    def transport(self, runtime: SourcePort) -> ShardTransport:
        """The stream's API (Kinesis, DynamoDB Streams)."""
        raise NotImplementedError

    def mapping_document(self) -> dict[str, Any]:
        return mapping_fields.stream(self)

    def single_reader(self, runtime: SourcePort) -> bool:
        """Only one router of a state dir may read this stream: its shard checkpoints are in
        the embedded store, without leases (with ``lease_table``, hosts share it)."""
        return (self.lease_table or runtime.router.lease_table) is None

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> ShardReader:
        """The reader, with the checkpoints in the lease table when one is named (here or on
        the router), else in the embedded store."""
        consumer = f"{spec.name}|{self.stream_name}"
        table = self.lease_table or runtime.router.lease_table
        if table is not None:
            from eventrouter.sources.shards.leases import DynamoCheckpoints

            checkpoints: Checkpoints = DynamoCheckpoints(
                runtime.clients,
                table,
                consumer,
                region=self.region,
                endpoint_url=self.endpoint_url,
                lease_seconds=self.lease_duration,
            )
        else:
            from eventrouter.sources.shards.checkpoints import SqliteCheckpoints
            from eventrouter.store.sqlite import EventStore

            if not isinstance(runtime.store, EventStore):
                raise ConfigError(
                    f"{type(self).__name__}({self.stream_name!r}): a router on a shared queue "
                    "keeps shard checkpoints in DynamoDB: give lease_table='...'"
                )
            checkpoints = SqliteCheckpoints(runtime.store, consumer)
        return self.adapter_class(
            self, self.transport(runtime), checkpoints, role=role_arn(spec.name)
        )
