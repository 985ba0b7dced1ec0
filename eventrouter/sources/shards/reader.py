"""``ShardReader``: a sharded stream (Kinesis, DynamoDB Streams) as a
:class:`~eventrouter.contract.adapters.StreamAdapter`.

It knows the transport only: which shards exist and which may be read now, one polling task
per shard it reads, and where each shard's checkpoint is kept. Shards are the policy's
partitions; a record's sequence number (as an integer) is its offset.

- **Discovery**: the shard list is read at start and every ``discovery_interval`` seconds
  (and at once when a shard finishes), so shards made by a split or a merge are found while
  running.
- **Parents before children**: a shard is read only once each of its parents still listed
  is *finished*: read to its end (the service says so: no next iterator, or the shard is
  closed and reading has reached its ending sequence number) and every record of it done
  (the policy's checkpoint passed its last record). A child starts at its beginning.
- **Checkpoints**: the policy commits "the next offset to process"; the reader keeps the
  sequence numbers it handed out and stores the last one done, from which reading resumes
  (``AFTER_SEQUENCE_NUMBER``), with the open tumbling window's state
  (:mod:`eventrouter.sources.shards.checkpoints`). With leases, a shard whose lease is lost is
  revoked from the policy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import anyio
import structlog

from eventrouter.services.hiccups import Hiccups
from eventrouter.sources.shards.checkpoints import Checkpoints

log = structlog.get_logger("eventrouter.stream")

Assigned = Callable[[set[Any]], Awaitable[None]]


class ShardInfo(NamedTuple):
    id: str
    parents: tuple[str, ...] = ()
    #: The shard is closed (split or merged, or its stream's shard rotated).
    closed: bool = False
    #: Its ending sequence number, when closed.
    ending: int | None = None


class ShardRecord:
    """One record as the stream policy sees it: ``offset`` (the sequence number as an
    integer), ``timestamp`` (arrival, ms), ``value`` (what typed handlers decode), ``key``
    (the partition key: one key, one lane), and ``raw``, the service's record."""

    __slots__ = ("key", "offset", "raw", "sequence", "shard", "timestamp", "value")

    def __init__(
        self,
        shard: str,
        sequence: str,
        timestamp: int,
        key: Any,
        value: bytes | None,
        raw: Any,
    ) -> None:
        self.shard = shard
        self.sequence = sequence
        self.offset = int(sequence)
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.raw = raw


class ExpiredIterator(Exception):
    """The shard iterator expired (they last five minutes): make a new one."""


class ShardTransport(Protocol):
    """One stream's API: Kinesis (``sources/kinesis/source.py``), DynamoDB Streams
    (``sources/dynamodb_streams/source.py``) or the in-memory one of the tests."""

    #: The stream's ARN and region, known once :meth:`connect` returned.
    arn: str
    region: str

    async def connect(self) -> None:
        """Find the stream (``SourceError`` if it does not exist or may not be read)."""
        ...

    async def shards(self) -> list[ShardInfo]: ...

    async def iterator(
        self, shard: str, kind: str, sequence: str | None = None, timestamp: float | None = None
    ) -> str: ...

    async def read(
        self, shard: str, iterator: str, limit: int
    ) -> tuple[list[ShardRecord], str | None, int | None]:
        """Records, the next iterator (``None``: the shard is finished), milliseconds behind
        the stream's tip when the service says."""
        ...


class _Shard:
    """A shard this reader reads."""

    def __init__(self, info: ShardInfo, checkpoint: str | None, start: str) -> None:
        self.info = info
        #: The last sequence number done (stored), and the last one fetched.
        self.checkpoint = checkpoint
        self.last_fetched: str | None = None
        self.start = start
        #: Offsets and sequence numbers handed to the policy and not yet done.
        self.pending: collections.deque[tuple[int, str]] = collections.deque()
        self.read_to_end = False
        self.finished = False
        self.paused = False
        self.resumed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.millis_behind: int | None = None


class ShardReader:
    """Reads the shards of one stream for one function (see the module's text)."""

    source: Any

    def __init__(
        self,
        source: Any,
        transport: ShardTransport,
        checkpoints: Checkpoints,
        *,
        role: str,
    ) -> None:
        """``role``: the function's execution role (``invokeIdentityArn`` of its records)."""
        self.source = source
        self.transport = transport
        self.checkpoints = checkpoints
        self.role = role
        self.poll_interval: float = source.poll_interval
        self.discovery_interval: float = source.discovery_interval
        self.reading: dict[str, _Shard] = {}
        self._finished: set[str] = set()
        self._data: dict[str, list[ShardRecord]] = {}
        self._data_ready = asyncio.Event()
        #: Per shard, the start of its last read: staged by the poller, handed out by fetch.
        self._staged_through: dict[str, float] = {}
        self._through: dict[str, float] = {}
        self._discover_now = asyncio.Event()
        self._windows: dict[str, bytes | None] = {}
        self._on_assigned: Assigned | None = None
        self._on_revoked: Assigned | None = None
        self._manager: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        #: Set (and replaced) after each commit and each finished shard: tests wait on it.
        self.progress = asyncio.Event()

    def value_of(self, raw: ShardRecord) -> bytes:
        return raw.value if raw.value is not None else b"null"

    @property
    def arn(self) -> str:
        return self.transport.arn

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, on_assigned: Assigned, on_revoked: Assigned) -> None:
        self._on_assigned, self._on_revoked = on_assigned, on_revoked
        await self.transport.connect()
        await self._discover()
        self._manager = asyncio.get_running_loop().create_task(self._manage())

    async def stop(self) -> None:
        tasks = [st.task for st in self.reading.values() if st.task is not None]
        tasks.extend(self._retiring)
        if self._manager is not None:
            tasks.append(self._manager)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.checkpoints.release(list(self.reading))

    # -- shards ------------------------------------------------------------------------------

    async def _manage(self) -> None:
        hiccups = Hiccups("shard discovery failed", None, None, stream=self.transport.arn)
        while True:
            with anyio.move_on_after(min(self.discovery_interval, self.checkpoints.renew_every)):
                await self._discover_now.wait()
            self._discover_now.clear()
            try:
                await self._discover()
                hiccups.ok()
            except Exception as exc:  # noqa: BLE001 - the shards being read go on meanwhile
                await hiccups.failed(exc)

    async def _discover(self) -> None:
        """List the shards; start those now readable and ours, revoke those no longer ours."""
        assert self._on_assigned is not None and self._on_revoked is not None
        listed = {info.id: info for info in await self.transport.shards()}
        for shard, st in self.reading.items():  # a shard being read may have been closed
            if shard in listed:
                st.info = listed[shard]
        self._finished |= await self.checkpoints.finished(set(listed) - self._finished)
        readable = [
            info
            for info in listed.values()
            if info.id not in self._finished
            and all(p in self._finished or p not in listed for p in info.parents)
        ]
        owned = await self.checkpoints.acquire([info.id for info in readable])
        lost = {
            shard for shard, st in self.reading.items() if shard not in owned and not st.finished
        }
        if lost:
            await self._on_revoked(lost)
            await self._drop(lost)
        fresh = [info for info in readable if info.id in owned and info.id not in self.reading]
        if not fresh:
            return
        for info in fresh:
            checkpoint = await self.checkpoints.load(info.id)
            # A child of shards read here starts at its beginning; a first shard where asked.
            child = any(p in listed or p in self._finished for p in info.parents)
            start = "TRIM_HORIZON" if child else self.source.starting_position
            self.reading[info.id] = _Shard(info, checkpoint.sequence, start)
            self._windows[info.id] = checkpoint.window
        await self._on_assigned({info.id for info in fresh})
        loop = asyncio.get_running_loop()
        for info in fresh:
            st = self.reading[info.id]
            st.task = loop.create_task(self._poll(st))
        self._progressed()

    async def _drop(self, shards: set[str]) -> None:
        for shard in shards:
            st = self.reading.pop(shard, None)
            self._data.pop(shard, None)
            if st is not None and st.task is not None:
                st.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await st.task

    async def _poll(self, st: _Shard) -> None:
        """Read one shard until its end (or until cancelled)."""
        shard = st.info.id
        limit = min(max(self.source.batch_size, 100), 10_000)
        iterator: str | None = None
        hiccups = Hiccups("shard read failed", None, None, shard=shard)
        while True:
            if st.paused:
                st.resumed.clear()
                await st.resumed.wait()
                continue
            try:
                if iterator is None:
                    iterator = await self._iterator(st)
                started = time.time()
                records, iterator, st.millis_behind = await self.transport.read(
                    shard, iterator, limit
                )
                hiccups.ok()
            except ExpiredIterator:
                iterator = None
                continue
            except Exception as exc:  # noqa: BLE001 - a service hiccup must not end the shard
                iterator = None  # the next one starts after the last record fetched
                await hiccups.failed(exc)
                continue
            if records:
                st.last_fetched = records[-1].sequence
                st.pending.extend((r.offset, r.sequence) for r in records)
                self._data.setdefault(shard, []).extend(records)
                self._data_ready.set()
            # Every record that arrived before this read started is now fetched (or was):
            # handed to the policy with the next fetch (tumbling windows close on this).
            self._staged_through[shard] = started
            if iterator is None or (not records and self._at_end(st)):
                st.read_to_end = True
                await self._finish_if_done(st)
                return
            if len(records) < limit:
                await anyio.sleep(self.poll_interval)

    async def _iterator(self, st: _Shard) -> str:
        after = st.last_fetched or st.checkpoint
        if after is not None:
            return await self.transport.iterator(st.info.id, "AFTER_SEQUENCE_NUMBER", after)
        return await self.transport.iterator(
            st.info.id, st.start, timestamp=self.source.starting_timestamp
        )

    @staticmethod
    def _at_end(st: _Shard) -> bool:
        """A closed shard read up to its ending sequence number has nothing more."""
        if not st.info.closed or st.info.ending is None:
            return False
        position = st.last_fetched or st.checkpoint
        return (int(position) if position is not None else 0) >= st.info.ending

    async def _finish_if_done(self, st: _Shard) -> None:
        if st.finished or not st.read_to_end or st.pending:
            return
        st.finished = True
        await self.checkpoints.finish(st.info.id)
        self._finished.add(st.info.id)
        log.info("shard finished", stream=self.transport.arn, shard=st.info.id)
        assert self._on_revoked is not None
        # Revoked by the manager (the policy's revocation waits for this shard's batches,
        # and this may be called from the policy's own commit).
        self._discover_now.set()
        task = asyncio.get_running_loop().create_task(self._retire(st.info.id))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, shard: str) -> None:
        assert self._on_revoked is not None
        await self._on_revoked({shard})
        self.reading.pop(shard, None)
        self._windows.pop(shard, None)
        self._discover_now.set()
        self._progressed()

    # -- what the policy calls ---------------------------------------------------------------

    async def fetch(
        self, partitions: list[Any] | None, wait: float, max_records: int
    ) -> dict[Any, list[Any]]:
        if not self._data:
            self._data_ready.clear()
            with anyio.move_on_after(wait):
                await self._data_ready.wait()
        data, self._data = self._data, {}
        self._through.update(self._staged_through)
        return data

    def read_through(self, tp: Any) -> float | None:
        """When the last read of shard ``tp`` whose records were handed out started (epoch
        seconds): every record that arrived before then has been fetched."""
        return self._through.get(tp)

    def pause(self, tp: Any) -> None:
        st = self.reading.get(tp)
        if st is not None:
            st.paused = True

    def resume(self, tp: Any) -> None:
        st = self.reading.get(tp)
        if st is not None:
            st.paused = False
            st.resumed.set()

    async def commit(
        self, offsets: dict[Any, int], windows: dict[Any, bytes | None] | None = None
    ) -> None:
        """Store, per shard, the last sequence number below the policy's checkpoint."""
        rows: dict[str, tuple[str | None, bytes | None]] = {}
        done: list[_Shard] = []
        for shard in offsets.keys() | (windows or {}).keys():
            st = self.reading.get(shard)
            if st is None or st.finished:
                continue
            last = None
            pending = st.pending
            offset = offsets.get(shard, -1)
            while pending and pending[0][0] < offset:
                last = pending.popleft()[1]
            if last is not None:
                st.checkpoint = last
            if windows is not None and shard in windows:
                self._windows[shard] = windows[shard]
            if last is not None or (windows is not None and shard in windows):
                rows[shard] = (last, self._windows.get(shard))
            if st.read_to_end and not pending:
                done.append(st)
        if rows:
            refused = await self.checkpoints.save(rows)
            if refused:
                log.warning("checkpoint refused: lease lost", shards=sorted(refused))
                self._discover_now.set()
        for st in done:
            await self._finish_if_done(st)
        self._progressed()

    def _progressed(self) -> None:
        self.progress.set()
        self.progress = asyncio.Event()

    async def wait_until(self, check: Callable[[], bool], within: float = 10.0) -> None:
        """Wait until ``check()`` holds, looking again after each commit or finished shard."""
        with anyio.fail_after(within):
            while not check():
                await self.progress.wait()

    async def committed(self, tp: Any) -> int | None:
        st = self.reading.get(tp)
        if st is None or st.checkpoint is None:
            return None
        return int(st.checkpoint) + 1

    async def seek_to_timestamp(self, tps: set[Any], timestamp: float) -> None:
        """Nothing to do: a shard without a checkpoint already starts from an
        ``AT_TIMESTAMP`` iterator (a child of shards read here, at its beginning)."""

    def window(self, tp: Any) -> bytes | None:
        """The open tumbling window stored with the shard's checkpoint."""
        return self._windows.get(tp)

    def highwater(self, tp: Any) -> int | None:
        return None  # a shard's end is not a count of records: see millis_behind

    def millis_behind(self, tp: Any) -> int | None:
        st = self.reading.get(tp)
        return None if st is None else st.millis_behind

    def partition_name(self, tp: Any) -> str:
        return str(tp)

    #: The failure record's key of a batch's info (``KinesisBatchInfo``...).
    batch_info_kind: str

    def trace_of(self, raw: ShardRecord) -> str | None:
        return None  # Kinesis and DynamoDB Streams records carry no headers

    def lineage_of(self, raws: list[ShardRecord]) -> int:
        return 0

    def item_identifier(self, raw: ShardRecord) -> Hashable:
        """A record's ``itemIdentifier`` in a partial batch response: its sequence number."""
        return raw.sequence

    def identifier_key(self, ident: Any) -> Hashable:
        return ident if isinstance(ident, str) else None

    def batch_info(self, raws: list[ShardRecord]) -> tuple[str, dict[str, Any]]:
        first, last = raws[0], raws[-1]
        return self.batch_info_kind, {
            "shardId": first.shard,
            "startSequenceNumber": first.sequence,
            "endSequenceNumber": last.sequence,
            "approximateArrivalOfFirstRecord": iso_ms(first.timestamp),
            "approximateArrivalOfLastRecord": iso_ms(last.timestamp),
            "batchSize": len(raws),
            "streamArn": self.transport.arn,
        }

    def describe(self) -> dict[str, Any]:
        return {"stream": self.transport.arn, "shards": sorted(self.reading)}


def iso_ms(ms: int) -> str:
    """An arrival time (ms since the epoch) as a failure record's batch info writes it."""
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")
