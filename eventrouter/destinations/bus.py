"""``to_bus``: put the record (or ``ctx.send``'s payload) on an embedded event bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from eventrouter.arns import DEFAULT_BUS, bus_name, event_bus_arn
from eventrouter.errors import ConfigError, DestinationError
from eventrouter.keywords import checked
from eventrouter.sources.bus.rules import check_bus_name

if TYPE_CHECKING:
    from eventrouter.contract.spec import Services


class ToBus(msgspec.Struct, frozen=True, kw_only=True):
    bus: str
    source: str
    detail_type: str

    def describe(self) -> str:
        return f"bus:{self.bus}"

    def permission(self, key: str) -> tuple[str, str]:
        return "events:PutEvents", event_bus_arn(self.bus)

    def check(self, runtime: Services) -> None:
        if self.bus not in runtime.buses.buses:
            raise ConfigError(
                f"to_bus({self.bus!r}): no such event bus; declare it with "
                f"Router(buses=[EventBus({self.bus!r})]) or name it in an EventRule"
            )

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        entry = {
            "Source": self.source,
            "DetailType": self.detail_type,
            "Detail": record.decode(),
            "EventBusName": self.bus,
        }
        (result,) = await runtime.buses.put_events([entry])
        if "ErrorCode" in result:
            raise DestinationError(
                f"event bus {self.bus!r} refused the event: {result['ErrorCode']}: "
                f"{result['ErrorMessage']}"
            )


@checked
def to_bus(
    bus: str = DEFAULT_BUS,
    *,
    source: str = "eventrouter",
    detail_type: str = "Lambda Function Invocation Result",
) -> ToBus:
    """Put records on the embedded event bus ``bus`` as the event's ``detail``::

    >>> await ctx.send(to_bus("orders", source="shop", detail_type="order.placed"), order)
    """
    name = check_bus_name(bus_name(bus))
    if not source or not detail_type:
        raise ConfigError("to_bus: source and detail_type must be non-empty")
    return ToBus(bus=name, source=source, detail_type=detail_type)
