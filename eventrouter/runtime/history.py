"""The last minutes of readings, for the dashboard: one every second, the store's queue depths
every few seconds (a query), kept for ten minutes."""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import anyio
import structlog

from eventrouter.runtime.readings import Reading, take

if TYPE_CHECKING:
    from eventrouter.runtime.readings import Observed

log = structlog.get_logger("eventrouter")

#: Seconds between readings, between queue-depth queries, and readings kept.
SAMPLE_INTERVAL = 1.0
DEPTH_INTERVAL = 5.0
KEPT = 600


class History:
    """Readings of one runtime, oldest first."""

    def __init__(self, runtime: Observed) -> None:
        self.runtime = runtime
        self.readings: deque[Reading] = deque(maxlen=KEPT)
        self.started = time.time()
        #: When the store's queue depths were last queried.
        self._depths_at = 0.0

    async def sample(self, queues: bool = True) -> Reading:
        """Take a reading now and keep it; queue depths carried over from the last query
        while it is recent (``queues=False``: not queried now in any case)."""
        last = self.readings[-1] if self.readings else None
        query = queues and (last is None or time.time() - self._depths_at >= DEPTH_INTERVAL)
        reading = await take(self.runtime, queues=query)
        if query:
            self._depths_at = reading.at
        elif last is not None:
            reading.queues = last.queues
        self.readings.append(reading)
        return reading

    async def run(self) -> None:
        """Sample every second until cancelled (the engine's task group)."""
        while True:
            await anyio.sleep(SAMPLE_INTERVAL)
            try:
                await self.sample()
            except Exception as exc:  # noqa: BLE001 - a reading must never stop the router
                log.warning("metrics reading failed", error=repr(exc))

    async def now(self) -> list[Reading]:
        """The kept readings and one taken now, not kept (what a page shows: now, and the
        minutes before); the store's depths from the latest kept reading."""
        if not self.readings:
            await self.sample()
        reading = await take(self.runtime, queues=False)
        reading.queues = self.readings[-1].queues
        return [*self.readings, reading]
