"""Records to destinations: the one delivery every model uses.

:meth:`Deliveries.deliver` makes one attempt: the function's role is checked, the
destination sends, and the attempt is counted and told to the listeners (the testing
helpers, the benchmarks). A refusal by the role is final (the policies are fixed at
start-up): the whole record is logged so nothing is lost silently. A failed send is the
caller's to retry on :func:`eventrouter.outcomes.delivery_retry`'s schedule: the
asynchronous policy persists the record and stops at the event's maximum age
(:meth:`AsyncPolicy._deliver`); a stream holds its partition and tries until the record is
out (:meth:`deliver_until_done`), because the checkpoint may not pass records whose
failure record is not.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import structlog

from eventrouter.errors import AccessDenied
from eventrouter.observability.tracing import sending
from eventrouter.outcomes import delivery_retry

if TYPE_CHECKING:
    from eventrouter.contract.spec import Destination, FunctionSpec
    from eventrouter.runtime.ports import CallerPort

log = structlog.get_logger("eventrouter")

#: Called with (function, "on_success" | "on_failure", record, error) after each delivery
#: attempt; ``error`` is ``None`` when the record was delivered.
DeliveryListener = Callable[[str, str, bytes, BaseException | None], None]


class Delivered(enum.Enum):
    DONE = "delivered"
    REFUSED = "refused by the role"
    FAILED = "failed"


class Deliveries:
    """Delivers records for one runtime."""

    def __init__(self, runtime: CallerPort) -> None:
        self.runtime = runtime
        self.listeners: list[DeliveryListener] = []

    async def send(
        self, spec: FunctionSpec, destination: Destination, record: bytes, key: str
    ) -> None:
        """Send as function ``spec``'s role allows (``AccessDenied`` if it does not)."""
        self.runtime.guard.check_send(spec, destination, key)
        await destination.send(self.runtime, record, key)

    def notify(self, function: str, kind: str, record: bytes, error: BaseException | None) -> None:
        for listener in self.listeners:
            listener(function, kind, record, error)

    async def deliver(
        self,
        spec: FunctionSpec,
        kind: str,
        destination: Destination,
        record: bytes,
        key: str,
        trace: str | None = None,
    ) -> tuple[Delivered, BaseException | None]:
        """One delivery attempt of ``record`` (an ``on_success`` / ``on_failure`` record);
        while tracing, in a span continuing ``trace`` (the invocation's), which the record's
        receiver continues in turn."""
        metrics = self.runtime.metrics
        try:
            with sending(kind, destination.describe(), trace):
                await self.send(spec, destination, record, key)
        except AccessDenied as exc:
            metrics.add("DestinationDeliveryFailures", spec.name)
            metrics.add("DestinationAccessDenied", spec.name)
            self.notify(spec.name, kind, record, exc)
            log.error(
                "destination delivery refused by the function's role, record dropped",
                function=spec.name,
                destination=destination.describe(),
                kind=kind,
                error=str(exc),
                record=record.decode(errors="replace"),
            )
            return Delivered.REFUSED, exc
        except Exception as exc:  # noqa: BLE001 - any failed delivery is counted; caller retries
            metrics.add("DestinationDeliveryFailures", spec.name)
            self.notify(spec.name, kind, record, exc)
            return Delivered.FAILED, exc
        self.notify(spec.name, kind, record, None)
        return Delivered.DONE, None

    async def deliver_until_done(
        self,
        spec: FunctionSpec,
        kind: str,
        destination: Destination,
        record: bytes,
        key: str,
        trace: str | None = None,
    ) -> Delivered:
        """Deliver, retrying a failed send on :func:`delivery_retry`'s schedule, until the
        record is out or refused (cancel the calling task to give up)."""
        failures = 0
        while True:
            result, error = await self.deliver(spec, kind, destination, record, key, trace)
            if result is not Delivered.FAILED:
                return result
            failures += 1
            wait = delivery_retry(failures)
            log.error(
                "destination delivery failed, will retry",
                function=spec.name,
                destination=destination.describe(),
                kind=kind,
                error=repr(error),
                retry_in=wait,
            )
            await anyio.sleep(wait)
