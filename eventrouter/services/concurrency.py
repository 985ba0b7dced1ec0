"""Concurrency slots: reserved per function, the rest shared, the sum capped router-wide.
Under ``run --workers`` a function's reservation holds across the workers (:class:`SharedSlots`).

Counters, not semaphores: a synchronous caller that finds no slot is throttled at once
(Lambda's 429), and the asynchronous dispatcher asks how many slots are free before it takes
events from the queue, so nobody waits on a slot.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

from eventrouter.errors import ConfigError

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ROUTER_LIMIT = "ConcurrentInvocationLimitExceeded"


class SharedSlots:
    """A function's reserved slots shared by the routers of one state dir (``--workers``):
    byte ``i`` of a file under a record lock (``fcntl``) is slot ``i`` taken. The kernel
    drops the locks of a process that dies, so a killed worker never keeps slots. Record
    locks belong to the process, so this process's own slots are kept in ``held`` and not
    tried again.
    """

    __slots__ = ("count", "fd", "held", "next")

    def __init__(self, path: Path, count: int) -> None:
        path.parent.mkdir(mode=0o700, exist_ok=True)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.count = count
        self.held: list[int] = []
        self.next = os.getpid() % count  # workers start probing at different slots

    def take(self) -> bool:
        held = self.held
        for i in range(self.count):
            offset = (self.next + i) % self.count
            if offset in held:
                continue
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:  # another worker's
                continue
            held.append(offset)
            self.next = offset + 1
            return True
        return False

    def available(self) -> int:
        """How many slots no worker holds now (each probed: take and give back at once)."""
        free = 0
        for offset in range(self.count):
            if offset in self.held:
                continue
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:
                continue
            fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, offset)
            free += 1
        return free

    def give(self) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, self.held.pop())

    def close(self) -> None:
        os.close(self.fd)  # and with it every lock this process held


class FunctionSlots:
    """The slot counter of one function (and its slots shared with other workers)."""

    __slots__ = ("in_flight", "pooled", "reserved", "shared")

    def __init__(self, reserved: int | None) -> None:
        self.reserved = reserved
        self.in_flight = 0
        #: Invocations in flight on the unreserved pool (a reservation may change meanwhile).
        self.pooled = 0
        self.shared: SharedSlots | None = None


class Slots:
    """Slot accounting for every function of a router.

    Unreserved functions share ``max_concurrency - sum(reserved)`` slots, so a reservation is
    also a guarantee.
    """

    def __init__(
        self,
        max_concurrency: int,
        reservations: Iterable[tuple[str, int | None]],
        shared_dir: Path | None = None,
    ) -> None:
        self.functions = {name: FunctionSlots(reserved) for name, reserved in reservations}
        self.shared_dir = shared_dir
        if shared_dir is not None:  # reservations hold across the workers of a state dir
            for name, slots in self.functions.items():
                if slots.reserved:
                    slots.shared = SharedSlots(shared_dir / f"{name}.slots", slots.reserved)
        total = sum(f.reserved or 0 for f in self.functions.values())
        if total > max_concurrency:
            raise ConfigError(
                f"the reserved_concurrency of all functions adds up to {total}, "
                f"more than the router's max_concurrency={max_concurrency}"
            )
        self.max_concurrency = max_concurrency
        self.pool = max_concurrency - total
        self.pool_in_flight = 0
        self.total_in_flight = 0
        self._released: asyncio.Event | None = None

    def try_acquire(self, slots: FunctionSlots) -> str | None:
        """Take a slot; return ``None`` on success or the throttle reason."""
        if slots.reserved is not None:
            if slots.in_flight >= slots.reserved:
                return RESERVED_LIMIT
            if slots.shared is not None and not slots.shared.take():
                return RESERVED_LIMIT  # the other workers hold the rest
        elif self.pool_in_flight >= self.pool:
            return ROUTER_LIMIT
        else:
            self.pool_in_flight += 1
            slots.pooled += 1
        slots.in_flight += 1
        self.total_in_flight += 1
        return None

    def release(self, slots: FunctionSlots) -> None:
        if slots.shared is not None:
            slots.shared.give()
        slots.in_flight -= 1
        self.total_in_flight -= 1
        if slots.pooled:
            slots.pooled -= 1
            self.pool_in_flight -= 1
        if self._released is not None:
            self._released.set()

    def free(self, slots: FunctionSlots) -> int:
        """How many more invocations of this function could start now."""
        if slots.reserved is not None:
            free = slots.reserved - slots.in_flight
            if slots.shared is not None and free > 0:
                # Under --workers: what the others hold is not free either, so that the
                # dispatcher leaves events queued instead of taking them to be throttled.
                free = min(free, slots.shared.available())
            return free
        return self.pool - self.pool_in_flight

    def reserve(self, name: str, reserved: int | None) -> None:
        """Change ``name``'s reservation at run time (``PutFunctionConcurrency``): the pool
        shrinks or grows by the difference; invocations in flight keep the slot they took."""
        if self.shared_dir is not None:
            raise ConfigError("a reservation cannot change at run time under --workers yet")
        others = sum(f.reserved or 0 for n, f in self.functions.items() if n != name)
        if reserved is not None and others + reserved > self.max_concurrency:
            raise ConfigError(
                f"reserving {reserved} for {name!r}: the reservations would add up to"
                f" {others + reserved}, more than max_concurrency={self.max_concurrency}"
            )
        self.functions[name].reserved = reserved
        self.pool = self.max_concurrency - others - (reserved or 0)
        if self._released is not None:
            self._released.set()  # the dispatcher plans again

    def close(self) -> None:
        for slots in self.functions.values():
            if slots.shared is not None:
                slots.shared.close()

    async def wait_released(self) -> None:
        """Wait until some slot is released."""
        if self._released is None:
            self._released = asyncio.Event()
        self._released.clear()
        await self._released.wait()
