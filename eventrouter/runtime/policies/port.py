"""``PolicyPort``: what the policy of each model is handed (the engine implements it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from eventrouter.runtime.ports import CallerPort

if TYPE_CHECKING:
    from eventrouter.runtime.delivery import Deliveries
    from eventrouter.runtime.invoker import Invoker
    from eventrouter.services.concurrency import Slots


class PolicyPort(CallerPort, Protocol):
    """What the policy of a model uses."""

    #: The one caller of user code.
    @property
    def invoker(self) -> Invoker: ...

    #: Records to destinations, with the role check, metrics and listeners.
    @property
    def deliveries(self) -> Deliveries: ...

    #: Concurrency: the router's pool and each function's reservation.
    @property
    def slots(self) -> Slots: ...
