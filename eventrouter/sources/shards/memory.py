"""``MemoryKinesis``: a Kinesis stream held in memory, with Kinesis's resharding rules (a split
or merge closes its parents, which keep their records; the children start empty; reading a
closed shard past its last record ends with no next iterator). The shard reader and Lambda's
stream rules run on it unchanged; only the transport is replaced::

    stream = MemoryKinesis("clicks", shards=2, batch_size=10, parallelization_factor=4)

    @router.on_event(stream)
    async def count(batch: list[Click]) -> None: ...

    stream.put({"n": 1}, key="user-1")
    async with run_router(router):
        await stream.wait_finished(...)

Re-exported by :mod:`eventrouter.testing`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.lowlevel
import msgspec

from eventrouter.sources.kinesis.source import Kinesis
from eventrouter.sources.shards.reader import ShardInfo, ShardRecord

if TYPE_CHECKING:
    from eventrouter.contract.spec import SourcePort

_encoder = msgspec.json.Encoder()


class _Shard:
    def __init__(self, shard_id: str, parents: tuple[str, ...] = ()) -> None:
        self.id = shard_id
        self.parents = parents
        self.records: list[ShardRecord] = []
        self.closed = False


class MemoryKinesis(Kinesis, frozen=True, dict=True):
    """A Kinesis stream in memory with ``shards`` shards; every setting of :class:`Kinesis`."""

    #: Not checked against resource policies (there is no service behind it).
    principal: ClassVar[str | None] = None

    shards: int = 1

    @property
    def state(self) -> MemoryShards:
        if "_state" not in self.__dict__:
            self.__dict__["_state"] = MemoryShards(self.stream, self.shards)
        state: MemoryShards = self.__dict__["_state"]
        return state

    def put(self, value: Any, *, key: str, shard: str | None = None, age: float = 0.0) -> str:
        """Append a record (JSON-encoded unless bytes) to the open shard of ``key`` (or to
        ``shard``); its sequence number. ``age`` backdates its arrival."""
        return self.state.put(value, key=key, shard=shard, age=age)

    def source_arns(self) -> list[str]:
        return []

    def transport(self, runtime: SourcePort) -> MemoryShards:
        return self.state


class MemoryShards:
    """The transport of a :class:`MemoryKinesis` (and its contents)."""

    def __init__(self, name: str, shards: int) -> None:
        self.arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/{name}"
        self.region = "us-east-1"
        self.shards_by_id: dict[str, _Shard] = {}
        self._sequence = 0
        self.changed = anyio.Event()
        self.reads = 0
        for _ in range(shards):
            self._new_shard()

    def _new_shard(self, parents: tuple[str, ...] = ()) -> _Shard:
        shard = _Shard(f"shardId-{len(self.shards_by_id):012d}", parents)
        self.shards_by_id[shard.id] = shard
        return shard

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    @property
    def open_shards(self) -> list[_Shard]:
        return [s for s in self.shards_by_id.values() if not s.closed]

    def put(self, value: Any, *, key: str, shard: str | None = None, age: float = 0.0) -> str:
        if shard is None:
            opened = self.open_shards
            target = opened[sum(key.encode()) % len(opened)]
        else:
            target = self.shards_by_id[shard]
        assert not target.closed, f"{target.id} is closed"
        self._sequence += 1
        sequence = f"{self._sequence:021d}"
        data = value if isinstance(value, bytes) else _encoder.encode(value)
        arrival = int((time.time() - age) * 1000)
        target.records.append(ShardRecord(target.id, sequence, arrival, key, data, None))
        self._notify()
        return sequence

    def split(self, shard: str) -> tuple[str, str]:
        """Close ``shard``; two children take the keys it had."""
        parent = self.shards_by_id[shard]
        parent.closed = True
        a, b = self._new_shard((shard,)), self._new_shard((shard,))
        self._notify()
        return a.id, b.id

    def merge(self, shard: str, adjacent: str) -> str:
        """Close both; one child takes their keys."""
        for s in (shard, adjacent):
            self.shards_by_id[s].closed = True
        child = self._new_shard((shard, adjacent))
        self._notify()
        return child.id

    # -- the transport ---------------------------------------------------------------------

    async def connect(self) -> None:
        return None

    async def shards(self) -> list[ShardInfo]:
        return [
            ShardInfo(
                s.id,
                s.parents,
                s.closed,
                (int(s.records[-1].sequence) if s.records else 0) if s.closed else None,
            )
            for s in self.shards_by_id.values()
        ]

    async def iterator(
        self, shard: str, kind: str, sequence: str | None = None, timestamp: float | None = None
    ) -> str:
        records = self.shards_by_id[shard].records
        if kind == "TRIM_HORIZON":
            index = 0
        elif kind == "LATEST":
            index = len(records)
        elif kind == "AT_TIMESTAMP":
            ms = (timestamp or 0) * 1000
            index = next((i for i, r in enumerate(records) if r.timestamp >= ms), len(records))
        else:
            assert kind == "AFTER_SEQUENCE_NUMBER" and sequence is not None
            index = next(
                (i for i, r in enumerate(records) if r.offset > int(sequence)), len(records)
            )
        return f"{shard}/{index}"

    async def read(
        self, shard: str, iterator: str, limit: int
    ) -> tuple[list[ShardRecord], str | None, int | None]:
        self.reads += 1
        await anyio.lowlevel.checkpoint()
        _, index_text = iterator.rsplit("/", 1)
        index = int(index_text)
        source = self.shards_by_id[shard]
        records = source.records[index : index + limit]
        index += len(records)
        if source.closed and index >= len(source.records):
            return records, None, 0  # Kinesis: a closed shard read to its end
        return records, f"{shard}/{index}", 0
