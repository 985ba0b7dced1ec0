"""Concurrency slots: reserved per function, the rest shared, the sum capped router-wide.

Counters, not semaphores: a synchronous caller that finds no slot is throttled at once
(Lambda's 429), and the asynchronous dispatcher asks how many slots are free before it takes
events from the queue, so nobody waits on a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from eventrouter.errors import ConfigError

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ROUTER_LIMIT = "ConcurrentInvocationLimitExceeded"


class FunctionSlots:
    """The slot counter of one function."""

    __slots__ = ("in_flight", "reserved")

    def __init__(self, reserved: int | None) -> None:
        self.reserved = reserved
        self.in_flight = 0


class Slots:
    """Slot accounting for every function of a router.

    Unreserved functions share ``max_concurrency - sum(reserved)`` slots, so a reservation is
    also a guarantee.
    """

    def __init__(
        self, max_concurrency: int, reservations: Iterable[tuple[str, int | None]]
    ) -> None:
        self.functions = {name: FunctionSlots(reserved) for name, reserved in reservations}
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
        elif self.pool_in_flight >= self.pool:
            return ROUTER_LIMIT
        else:
            self.pool_in_flight += 1
        slots.in_flight += 1
        self.total_in_flight += 1
        return None

    def release(self, slots: FunctionSlots) -> None:
        slots.in_flight -= 1
        self.total_in_flight -= 1
        if slots.reserved is None:
            self.pool_in_flight -= 1
        if self._released is not None:
            self._released.set()

    def free(self, slots: FunctionSlots) -> int:
        """How many more invocations of this function could start now."""
        if slots.reserved is not None:
            return slots.reserved - slots.in_flight
        return self.pool - self.pool_in_flight

    async def wait_released(self) -> None:
        """Wait until some slot is released."""
        if self._released is None:
            self._released = asyncio.Event()
        self._released.clear()
        await self._released.wait()
