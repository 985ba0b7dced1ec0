"""What the Kinesis and DynamoDB Streams transports share: an aiobotocore client, the
stream's ARN and region, shard listings with their parents and ends, iterators, and reads
whose expired iterators the reader makes again. Each service says how it names a stream in a
request, its sequence-number field and which errors mean an iterator expired; its own module
finds the stream and shapes its records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from eventrouter.arns import REGION
from eventrouter.services.clients import error_code
from eventrouter.sources.shards.reader import ExpiredIterator, ShardInfo

if TYPE_CHECKING:
    from eventrouter.services.clients import Clients


class AwsShardTransport:
    """A stream's shards through an AWS API (``connect`` and record shapes are the
    service's)."""

    #: How ``GetShardIterator`` names the starting sequence number.
    sequence_field: ClassVar[str]
    #: The error codes of ``GetRecords`` that mean: make a new iterator.
    expired: ClassVar[tuple[str, ...]] = ("ExpiredIteratorException",)

    def __init__(self, source: Any, clients: Clients, named: str) -> None:
        self.source = source
        self._clients = clients
        self._client: Any = None
        #: The stream's ARN: given, or found by :meth:`connect`.
        self.arn = named if named.startswith("arn:") else ""
        self.region: str = source.region or REGION

    def locator(self) -> dict[str, str]:
        """How the stream is named in a request."""
        raise NotImplementedError

    @staticmethod
    def shard_info(shard: dict[str, Any], parents: tuple[str | None, ...]) -> ShardInfo:
        """A listed shard: its parents, whether it is closed and where it ends."""
        ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
        return ShardInfo(
            shard["ShardId"],
            tuple(p for p in parents if p),
            ending is not None,
            int(ending) if ending is not None else None,
        )

    async def iterator(
        self, shard: str, kind: str, sequence: str | None = None, timestamp: float | None = None
    ) -> str:
        request: dict[str, Any] = {**self.locator(), "ShardId": shard, "ShardIteratorType": kind}
        if sequence is not None:
            request[self.sequence_field] = sequence
        if kind == "AT_TIMESTAMP":
            request["Timestamp"] = datetime.fromtimestamp(timestamp or 0, UTC)
        iterator: str = (await self._client.get_shard_iterator(**request))["ShardIterator"]
        return iterator

    async def get_records(self, **request: Any) -> dict[str, Any]:
        """``GetRecords``; :class:`ExpiredIterator` when the iterator must be made again."""
        try:
            response: dict[str, Any] = await self._client.get_records(**request)
        except Exception as exc:
            if error_code(exc) in self.expired:
                raise ExpiredIterator from exc
            raise
        return response
