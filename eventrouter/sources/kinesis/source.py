"""``Kinesis``: a Kinesis data stream as the source of a function, through aiobotocore.

The transport (list shards, iterators, ``GetRecords``) and the shapes of its records in
Lambda's event; shard discovery and checkpoints are :mod:`eventrouter.sources.shards.reader`'s,
Lambda's stream rules :mod:`eventrouter.runtime.policies.stream`'s.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from eventrouter.arns import ACCOUNT, REGION
from eventrouter.contract.spec import messaging
from eventrouter.errors import ConfigError, SourceError
from eventrouter.filters import maybe_json
from eventrouter.services.clients import error_code
from eventrouter.sources.shards.aws import AwsShardTransport
from eventrouter.sources.shards.reader import (
    ShardInfo,
    ShardReader,
    ShardRecord,
    ShardTransport,
)
from eventrouter.sources.shards.stream import ShardedStream

if TYPE_CHECKING:
    from eventrouter.contract.spec import SourcePort
    from eventrouter.services.clients import Clients


class KinesisRecord(msgspec.Struct, frozen=True):
    """One record's metadata with its decoded data: ``ctx.records[i]`` / ``ctx.record``."""

    shard_id: str
    sequence_number: str
    partition_key: str
    approximate_arrival_timestamp: float
    data: bytes
    value: Any = None


class KinesisTransport(AwsShardTransport):
    """aiobotocore's Kinesis client, reduced to what the shard reader needs."""

    sequence_field = "StartingSequenceNumber"

    def __init__(self, source: Kinesis, clients: Clients) -> None:
        super().__init__(source, clients, source.stream)

    def locator(self) -> dict[str, str]:
        return {"StreamARN": self.arn}

    async def connect(self) -> None:
        source = self.source
        self._client = await self._clients.aws("kinesis", source.region, source.endpoint_url)
        named = {"StreamARN": source.stream} if self.arn else {"StreamName": source.stream}
        try:
            summary = (await self._client.describe_stream_summary(**named))[
                "StreamDescriptionSummary"
            ]
        except Exception as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                raise SourceError(f"Kinesis({source.stream!r}): no such stream") from exc
            raise SourceError(
                f"Kinesis({source.stream!r}): cannot read the stream ({code or exc!r})"
            ) from exc
        self.arn = summary["StreamARN"]
        self.region = self.arn.split(":")[3]

    async def shards(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        request: dict[str, Any] = self.locator()
        while True:
            response = await self._client.list_shards(**request)
            for shard in response.get("Shards", []):
                parents = (shard.get("ParentShardId"), shard.get("AdjacentParentShardId"))
                out.append(self.shard_info(shard, parents))
            token = response.get("NextToken")
            if not token:
                return out
            request = {"NextToken": token}

    async def read(
        self, shard: str, iterator: str, limit: int
    ) -> tuple[list[ShardRecord], str | None, int | None]:
        response = await self.get_records(ShardIterator=iterator, Limit=limit, **self.locator())
        records = [
            ShardRecord(
                shard,
                raw["SequenceNumber"],
                int(raw["ApproximateArrivalTimestamp"].timestamp() * 1000),
                raw["PartitionKey"],
                raw["Data"],
                raw,
            )
            for raw in response.get("Records", ())
        ]
        return records, response.get("NextShardIterator"), response.get("MillisBehindLatest")


class KinesisAdapter(ShardReader):
    """The shard reader with Kinesis records in Lambda's shapes."""

    source: Kinesis
    batch_info_kind = "KinesisBatchInfo"

    def describe(self) -> dict[str, Any]:
        return {"stream": self.transport.arn, "shards": sorted(self.reading)}

    def lambda_event(self, raws: list[ShardRecord]) -> dict[str, Any]:
        arn, region, role = self.transport.arn, self.transport.region, self.role
        return {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r.key,
                        "sequenceNumber": r.sequence,
                        "data": base64.b64encode(r.value or b"").decode(),
                        "approximateArrivalTimestamp": r.timestamp / 1000,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{r.shard}:{r.sequence}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": role,
                    "awsRegion": region,
                    "eventSourceARN": arn,
                }
                for r in raws
            ]
        }

    def record(self, raw: ShardRecord, value: Any) -> KinesisRecord:
        return KinesisRecord(
            raw.shard, raw.sequence, raw.key, raw.timestamp / 1000, raw.value or b"", value
        )

    def filter_view(self, raw: ShardRecord) -> dict[str, Any]:
        """Filter patterns see the record's ``kinesis`` fields, ``data`` JSON-decoded."""
        return {
            "partitionKey": raw.key,
            "sequenceNumber": raw.sequence,
            "approximateArrivalTimestamp": raw.timestamp / 1000,
            "data": maybe_json(raw.value),
        }


class Kinesis(ShardedStream, frozen=True, dict=True):
    """Poll a Kinesis data stream (name or ARN); batches go to the function in order per
    shard (per partition key with ``parallelization_factor`` > 1).

    >>> @router.on_event(Kinesis("clicks", batch_size=100, parallelization_factor=4,
    ...                          bisect_on_error=True, max_retries=3),
    ...                  on_failure=to_sqs("clicks-failed"))
    ... async def count(batch: list[Click], ctx): ...

    Forms: ``list[T]`` gets the batch, each record's data decoded from JSON (metadata in
    ``ctx.records``: ``KinesisRecord``); ``T`` is called once per record in order;
    ``dict`` / unannotated gets Lambda's ``{"Records": [{"kinesis": ...}]}`` event (with
    ``tumbling_window``, the only form, with ``window`` and ``state``).
    """

    principal: ClassVar[str | None] = "kinesis.amazonaws.com"
    adapter_class: ClassVar[type[ShardReader]] = KinesisAdapter

    stream: str

    def __post_init__(self) -> None:
        if not isinstance(self.stream, str) or not self.stream:
            raise ConfigError(f"Kinesis stream={self.stream!r} must be a stream name or ARN")
        super().__post_init__()

    @property
    def stream_name(self) -> str:
        return self.stream.rsplit("/", 1)[-1]

    def trace_attributes(self) -> dict[str, Any]:
        return messaging("aws_kinesis", self.stream)

    def describe(self) -> str:
        return f"kinesis:{self.stream_name} batch={self.batch_size}"

    def source_arns(self) -> list[str]:
        if self.stream.startswith("arn:"):
            return [self.stream]
        return [f"arn:aws:kinesis:{self.region or REGION}:{ACCOUNT}:stream/{self.stream}"]

    def transport(self, runtime: SourcePort) -> ShardTransport:
        return KinesisTransport(self, runtime.clients)
