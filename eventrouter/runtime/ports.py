"""The port of the execution layer's bottom: what the invoker, ``Context``, the process
environments and the deliveries are handed (the policies get
:class:`eventrouter.runtime.policies.port.PolicyPort`). The engine implements it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from eventrouter.contract.spec import Invoking, Services

if TYPE_CHECKING:
    from eventrouter.security.guard import Guard


class CallerPort(Services, Invoking, Protocol):
    """Services, invoking, and the permission checks (``enforce_permissions``)."""

    @property
    def guard(self) -> Guard: ...
