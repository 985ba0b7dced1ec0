"""Where a sharded stream's progress is kept: one row per (consumer, shard).

A row holds the sequence number of the last record done (reading resumes *after* it), whether
the shard is finished (read to its end and all of it done: its children may start), and the
open tumbling window's state, written together so a restart resumes both at the same point.

:class:`SqliteCheckpoints` keeps them in the embedded store (one host);
:class:`eventrouter.sources.shards.leases.DynamoCheckpoints` on a DynamoDB table with a lease per
shard (several hosts).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from eventrouter.store.sqlite import EventStore


class Checkpoint(NamedTuple):
    #: The last record done (``None``: none yet).
    sequence: str | None = None
    finished: bool = False
    #: The open tumbling window, encoded (``None``: none).
    window: bytes | None = None


class Checkpoints(Protocol):
    """Durable progress of one consumer (a function reading one stream)."""

    #: Seconds between calls of :meth:`acquire` that leases need (``inf``: none).
    renew_every: float

    async def acquire(self, shards: list[str]) -> set[str]:
        """Of ``shards`` (readable now), those this host may read: all of them on one host;
        with leases, the ones it holds or took (renewing them)."""
        ...

    async def load(self, shard: str) -> Checkpoint: ...

    async def finished(self, shards: Iterable[str]) -> set[str]:
        """Of ``shards``, those finished."""
        ...

    async def save(self, rows: dict[str, tuple[str | None, bytes | None]]) -> set[str]:
        """Write ``{shard: (last sequence done or None to keep it, window)}``; the shards
        whose write was refused (their lease was lost)."""
        ...

    async def finish(self, shard: str) -> None: ...

    async def release(self, shards: Iterable[str]) -> None:
        """Give up ``shards`` (a host stopping): others may take them at once."""
        ...


class SqliteCheckpoints:
    """Checkpoints beside the events of the embedded store (the state dir's database)."""

    renew_every = math.inf

    def __init__(self, store: EventStore, consumer: str) -> None:
        self.store = store
        self.consumer = consumer

    async def acquire(self, shards: list[str]) -> set[str]:
        return set(shards)  # one host reads them all (the state dir has one consumer)

    async def load(self, shard: str) -> Checkpoint:

        def op(conn: sqlite3.Connection) -> Checkpoint:
            row = conn.execute(
                "SELECT sequence, finished, window FROM shard_checkpoints"
                " WHERE consumer = ? AND shard = ?",
                (self.consumer, shard),
            ).fetchone()
            return Checkpoint() if row is None else Checkpoint(row[0], bool(row[1]), row[2])

        checkpoint: Checkpoint = await self.store.transact(op)
        return checkpoint

    async def finished(self, shards: Iterable[str]) -> set[str]:
        wanted = set(shards)

        def op(conn: sqlite3.Connection) -> set[str]:
            rows = conn.execute(
                "SELECT shard FROM shard_checkpoints WHERE consumer = ? AND finished = 1",
                (self.consumer,),
            )
            return {shard for (shard,) in rows if shard in wanted}

        done: set[str] = await self.store.transact(op)
        return done

    async def save(self, rows: dict[str, tuple[str | None, bytes | None]]) -> set[str]:

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO shard_checkpoints (consumer, shard, sequence, window)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (consumer, shard) DO UPDATE SET"
                " sequence = coalesce(excluded.sequence, sequence), window = excluded.window",
                [(self.consumer, shard, seq, window) for shard, (seq, window) in rows.items()],
            )

        await self.store.transact(op)
        return set()

    async def finish(self, shard: str) -> None:
        await self.store.transact(
            lambda conn: conn.execute(
                "INSERT INTO shard_checkpoints (consumer, shard, finished) VALUES (?, ?, 1)"
                " ON CONFLICT (consumer, shard) DO UPDATE SET finished = 1, window = NULL",
                (self.consumer, shard),
            )
        )

    async def release(self, shards: Iterable[str]) -> None:
        return None
