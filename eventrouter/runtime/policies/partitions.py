"""A stream partition's state as the stream policy keeps it: its buffered records
(``Partition``), a batch taken from it (``Batch``) and the lane that runs its batches in order
(``Lane``). Shared by the batch runner and the tumbling windows."""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple

import anyio


class Window(NamedTuple):
    """An open tumbling window of a shard: its start and the state the handler returned."""

    start: int  # ms since the epoch
    state: Any


class Batch:
    """Records of one partition with their decoded values (``None`` for the raw form)."""

    __slots__ = ("raws", "values")

    def __init__(self, raws: list[Any], values: list[Any] | None) -> None:
        self.raws = raws
        self.values = values

    def __len__(self) -> int:
        return len(self.raws)

    def __getitem__(self, i: slice) -> Batch:
        return Batch(self.raws[i], None if self.values is None else self.values[i])


class Partition:
    """One assigned partition (a Kafka partition, a shard): its lanes and its checkpoint."""

    __slots__ = (
        "done",
        "fetched_to",
        "finished",
        "iterator_age",
        "lanes",
        "paused",
        "revoked",
        "tp",
        "window",
    )

    def __init__(self, tp: Any, lanes: int = 1) -> None:
        self.tp = tp
        #: Records of one partition key always go to the same lane; a lane runs one batch
        #: at a time, in order (``parallelization_factor`` lanes, else one).
        self.lanes = [Lane(self) for _ in range(lanes)]
        self.finished = asyncio.Event()
        self.revoked = False
        self.paused = False
        #: The checkpoint: the next offset to process (everything below it is done).
        self.done: int | None = None
        #: One past the last offset handed to the lanes.
        self.fetched_to: int | None = None
        #: Lambda's IteratorAge at the last fetch: ms from the last record's arrival.
        self.iterator_age: int | None = None
        #: The open tumbling window.
        self.window: Window | None = None

    @property
    def buffered(self) -> int:
        return sum(len(lane.buffer) for lane in self.lanes)

    def first_unfinished(self) -> int | None:
        """The checkpoint the lanes allow: the lowest offset not yet done."""
        low = None
        for lane in self.lanes:
            first = (
                lane.current_from
                if lane.current_from is not None
                else (lane.buffer[0].offset if lane.buffer else None)
            )
            if first is not None and (low is None or first < low):
                low = first
        return self.fetched_to if low is None else low


class Lane:
    """Records of one partition processed in order, one batch at a time."""

    __slots__ = ("buffer", "current_from", "finished", "part", "scope", "wake")

    def __init__(self, part: Partition) -> None:
        self.part = part
        self.buffer: list[Any] = []
        self.wake = asyncio.Event()
        self.finished = asyncio.Event()
        #: The first offset of the batch in flight not yet done (``None``: no batch).
        self.current_from: int | None = None
        self.scope: anyio.CancelScope | None = None
