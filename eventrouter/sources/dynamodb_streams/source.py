"""``DynamoDBStream``: a DynamoDB table's stream as the source of a function, through
aiobotocore.

The transport (``DescribeStream``, iterators, ``GetRecords``) and the shapes of its records in
Lambda's event; shard discovery and checkpoints are :mod:`eventrouter.sources.shards.reader`'s,
Lambda's stream rules :mod:`eventrouter.runtime.policies.stream`'s. Typed handlers get the
item's image (the new one; the old one for ``REMOVE``) decoded from DynamoDB's
attribute-value JSON by boto3's ``TypeDeserializer``.
"""

from __future__ import annotations

import base64
import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from eventrouter._optional import require
from eventrouter.errors import ConfigError, SourceError
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


def _plain(value: Any) -> Any:
    """What msgspec cannot encode of a deserialized image: sets, DynamoDB's ``Binary``."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    data = getattr(value, "value", None)
    if isinstance(data, bytes):
        return base64.b64encode(data).decode()
    raise TypeError(f"cannot encode {type(value).__name__}")


_image_encoder = msgspec.json.Encoder(enc_hook=_plain, decimal_format="number")


@functools.cache
def _deserializer() -> Any:
    return require("boto3.dynamodb.types", "aws").TypeDeserializer()


def plain_image(attributes: dict[str, Any]) -> dict[str, Any]:
    """An item's attribute values (``{"total": {"N": "2"}}``) as plain values."""
    deserialize = _deserializer().deserialize
    return {name: deserialize(value) for name, value in attributes.items()}


def _lambda_value(value: Any) -> Any:
    """An attribute value as Lambda's JSON event has it: binary as base64 text."""
    if isinstance(value, dict):
        return {k: _lambda_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lambda_value(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


class DynamoDBRecord(msgspec.Struct, frozen=True):
    """One change's metadata with its decoded image: ``ctx.records[i]`` / ``ctx.record``."""

    shard_id: str
    sequence_number: str
    event_name: str
    keys: dict[str, Any]
    new_image: dict[str, Any] | None
    old_image: dict[str, Any] | None
    approximate_creation_time: float
    value: Any = None


class DynamoDBStreamsTransport(AwsShardTransport):
    """aiobotocore's DynamoDB Streams client, reduced to what the shard reader needs."""

    sequence_field = "SequenceNumber"
    expired = ("ExpiredIteratorException", "TrimmedDataAccessException")

    def __init__(self, source: DynamoDBStream, clients: Clients) -> None:
        super().__init__(source, clients, source.table)

    def locator(self) -> dict[str, str]:
        return {"StreamArn": self.arn}

    async def connect(self) -> None:
        source = self.source
        _deserializer()  # boto3 is there (the aws extra), or a clear error now
        if not self.arn:
            tables = await self._clients.aws("dynamodb", source.region, source.endpoint_url)
            try:
                table = (await tables.describe_table(TableName=source.table))["Table"]
            except Exception as exc:
                code = error_code(exc)
                if code == "ResourceNotFoundException":
                    raise SourceError(f"DynamoDBStream({source.table!r}): no such table") from exc
                raise SourceError(
                    f"DynamoDBStream({source.table!r}): cannot read the table ({code or exc!r})"
                ) from exc
            if not table.get("LatestStreamArn"):
                raise SourceError(
                    f"DynamoDBStream({source.table!r}): the table has no stream (enable one "
                    "with StreamSpecification)"
                )
            self.arn = table["LatestStreamArn"]
        self.region = self.arn.split(":")[3]
        self._client = await self._clients.aws(
            "dynamodbstreams", source.region, source.endpoint_url
        )
        try:
            await self._client.describe_stream(StreamArn=self.arn, Limit=1)
        except Exception as exc:
            raise SourceError(
                f"DynamoDBStream({source.table!r}): cannot read stream {self.arn} "
                f"({error_code(exc) or exc!r})"
            ) from exc

    async def shards(self) -> list[ShardInfo]:
        out: list[ShardInfo] = []
        request: dict[str, Any] = {"StreamArn": self.arn}
        while True:
            description = (await self._client.describe_stream(**request))["StreamDescription"]
            for shard in description.get("Shards", []):
                out.append(self.shard_info(shard, (shard.get("ParentShardId"),)))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return out
            request = {"StreamArn": self.arn, "ExclusiveStartShardId": last}

    async def read(
        self, shard: str, iterator: str, limit: int
    ) -> tuple[list[ShardRecord], str | None, int | None]:
        response = await self.get_records(ShardIterator=iterator, Limit=min(limit, 1000))
        records = []
        for raw in response.get("Records", ()):
            change = raw["dynamodb"]
            image = (
                change.get("OldImage") if raw["eventName"] == "REMOVE" else change.get("NewImage")
            )
            value = _image_encoder.encode(plain_image(image)) if image is not None else None
            created = change.get("ApproximateCreationDateTime")
            ms = int(created.timestamp() * 1000) if isinstance(created, datetime) else 0
            key = _image_encoder.encode(_lambda_value(change.get("Keys") or {}))
            records.append(ShardRecord(shard, change["SequenceNumber"], ms, key, value, raw))
        return records, response.get("NextShardIterator"), None


def lambda_record(raw: ShardRecord, arn: str, region: str) -> dict[str, Any]:
    """One change as Lambda's DynamoDB event has it."""
    record = raw.raw
    change = _lambda_value(record["dynamodb"])
    change["ApproximateCreationDateTime"] = raw.timestamp / 1000
    out = {
        "eventID": record.get("eventID"),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "dynamodb": change,
        "eventSourceARN": arn,
    }
    if record.get("userIdentity"):
        out["userIdentity"] = record["userIdentity"]
    return out


class DynamoDBStreamAdapter(ShardReader):
    """The shard reader with DynamoDB changes in Lambda's shapes."""

    source: DynamoDBStream
    batch_info_kind = "DDBStreamBatchInfo"

    def lambda_event(self, raws: list[ShardRecord]) -> dict[str, Any]:
        arn, region = self.transport.arn, self.transport.region
        return {"Records": [lambda_record(r, arn, region) for r in raws]}

    def record(self, raw: ShardRecord, value: Any) -> DynamoDBRecord:
        change = raw.raw["dynamodb"]

        def image(name: str) -> dict[str, Any] | None:
            found = change.get(name)
            return None if found is None else plain_image(found)

        return DynamoDBRecord(
            raw.shard,
            raw.sequence,
            raw.raw["eventName"],
            image("Keys") or {},
            image("NewImage"),
            image("OldImage"),
            raw.timestamp / 1000,
            value,
        )

    def filter_view(self, raw: ShardRecord) -> dict[str, Any]:
        """Filter patterns see the record as Lambda's event has it (``eventName``,
        ``dynamodb.NewImage.<attr>.S``...), as Lambda's filters do."""
        return lambda_record(raw, self.transport.arn, self.transport.region)


class DynamoDBStream(ShardedStream, frozen=True, dict=True):
    """Poll a DynamoDB table's stream (table name or stream ARN); the table's changes go to
    the function in order per shard.

    >>> @router.on_event(DynamoDBStream("orders", batch_size=100, bisect_on_error=True))
    ... async def changed(batch: list[Order], ctx): ...

    Forms: ``list[T]`` / ``T`` get each change's image (the new one; the old one for
    ``REMOVE``) as plain JSON (``ctx.records``: ``DynamoDBRecord`` with both images);
    ``dict`` / unannotated gets Lambda's ``{"Records": [{"eventName": ..., "dynamodb":
    ...}]}`` event. DynamoDB Streams has no ``AT_TIMESTAMP`` starting position.
    """

    principal: ClassVar[str | None] = "dynamodb.amazonaws.com"
    adapter_class: ClassVar[type[ShardReader]] = DynamoDBStreamAdapter

    table: str

    def __post_init__(self) -> None:
        if not isinstance(self.table, str) or not self.table:
            raise ConfigError(
                f"DynamoDBStream table={self.table!r} must be a table name or stream ARN"
            )
        if self.starting_position == "AT_TIMESTAMP":
            raise ConfigError(
                "DynamoDBStream: starting_position must be TRIM_HORIZON or LATEST "
                "(DynamoDB Streams has no AT_TIMESTAMP)"
            )
        super().__post_init__()

    @property
    def stream_name(self) -> str:
        return self.table

    def trace_attributes(self) -> dict[str, Any]:
        return {"faas.trigger": "datasource", "faas.document.collection": self.table}

    def describe(self) -> str:
        return f"dynamodb:{self.table} batch={self.batch_size}"

    def source_arns(self) -> list[str]:
        # The stream's ARN (what its records carry) is known once the table is described.
        return [self.table] if self.table.startswith("arn:") else []

    def transport(self, runtime: SourcePort) -> ShardTransport:
        return DynamoDBStreamsTransport(self, runtime.clients)
