"""The one rule for a transport that fails: a hiccup never stops a source.

Each failure is logged (with the wait before the next try) and counted as ``SourceErrors``
for its function; the caller then waits, 1 s doubling to 30 s while failures follow one
another, and tries again. A success starts the count again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import structlog

from eventrouter.backoff import backoff

if TYPE_CHECKING:
    from eventrouter.observability.metrics import Metrics

log = structlog.get_logger("eventrouter")

FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0


class Hiccups:
    """The consecutive failures of one transport loop (a poller, a fetcher, a shard)."""

    __slots__ = ("event", "failures", "fields", "function", "metrics")

    def __init__(
        self, event: str, metrics: Metrics | None, function: str | None, **fields: Any
    ) -> None:
        #: What the log line says failed: ``"sqs receive failed"``.
        self.event = event
        self.metrics = metrics
        self.function = function
        self.fields = fields
        self.failures = 0

    def ok(self) -> None:
        """The transport answered: the next failure waits the shortest again."""
        self.failures = 0

    async def failed(self, exc: BaseException, **fields: Any) -> None:
        """Log and count ``exc``, then wait before the next try."""
        self.failures += 1
        wait = backoff(self.failures, FIRST_WAIT, LONGEST_WAIT)
        if self.metrics is not None and self.function is not None:
            self.metrics.add("SourceErrors", self.function)
        function = {"function": self.function} if self.function is not None else {}
        log.error(self.event, **function, **self.fields, **fields, error=repr(exc), retry_in=wait)
        await anyio.sleep(wait)
