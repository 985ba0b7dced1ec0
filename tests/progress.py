"""``Progress``: handlers note that they changed a test's state; the test awaits a predicate
on it (no sleeping): the one helper every source's tests use."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio


class Progress:
    """Handlers call ``note()`` after they change the test's state; the test awaits a predicate.

    Made in the test's event loop; ``note()`` may be called from a worker thread (a plain
    ``def`` handler). ``within``: how long :meth:`until` waits unless told otherwise.
    """

    def __init__(self, within: float = 30) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self.within = within

    def note(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._event.set()
        else:  # a plain def handler, on a worker thread
            self._loop.call_soon_threadsafe(self._event.set)

    async def until(self, predicate: Any, within: float | None = None) -> None:
        with anyio.fail_after(self.within if within is None else within):
            while not predicate():
                self._event.clear()
                await self._event.wait()
