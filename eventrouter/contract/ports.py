"""Ports: the few capabilities of a running router that a part is handed.

A part gets the port it uses, never the engine's whole bag
(:class:`eventrouter.runtime.interface.Runtime`, which only the engine, the HTTP app and the
control plane see):

- :class:`Services` — the router's settings, metrics, the durable store, shared clients:
  what adapters, destinations and feeds use;
- :class:`SourcePort` — ``Services`` plus queueing an event and what a starter attaches to
  (the end of an asynchronous event, the schedules' ledger): what sources use;
- :class:`Invoking` — invoking functions and sending records as a function's role allows:
  what ``Context``, the process environments and the destinations that invoke use.

The engine implements them all; tests hand parts fakes of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eventrouter.contract.destination import Destination
    from eventrouter.contract.spec import FunctionSpec
    from eventrouter.observability.metrics import Metrics
    from eventrouter.outcomes import Outcome
    from eventrouter.services.clients import Clients
    from eventrouter.store.base import Store


class RouterInfo(Protocol):
    """The router-wide settings parts read."""

    @property
    def name(self) -> str: ...

    #: The DynamoDB table of leases hosts share (``None``: one host).
    @property
    def lease_table(self) -> str | None: ...

    #: The SQS queue hosts share as the durable queue (``None``: the embedded store).
    @property
    def async_queue(self) -> Any: ...

    @property
    def functions(self) -> Mapping[str, FunctionSpec]: ...


class EventSink(Protocol):
    """The embedded event buses, as a destination sends to them."""

    @property
    def buses(self) -> Mapping[str, Any]: ...

    async def put_events(self, entries: list[Any]) -> list[dict[str, str]]: ...


class Services(Protocol):
    """The services of a running router."""

    @property
    def router(self) -> RouterInfo: ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def store(self) -> Store: ...

    @property
    def clients(self) -> Clients: ...

    #: Relative ``to_directory`` paths resolve under this folder when set.
    @property
    def directory_root(self) -> str | None: ...

    #: The embedded event buses.
    @property
    def buses(self) -> EventSink: ...

    async def enqueue_invocation(self, name: str, data: bytes, trace: str | None = None) -> str:
        """Queue an already encoded event for function ``name`` (continuing ``trace``)."""
        ...


#: Told of an asynchronous event's end: (function, request id, condition: ``Success``,
#: ``RetriesExhausted``, ``EventAgeExceeded``...).
FinalListener = Callable[[str, str, str], None]


class SourcePort(Services, Protocol):
    """What a source's adapter or starter may use."""

    async def send(
        self, spec: FunctionSpec, destination: Destination, record: bytes, key: str
    ) -> None:
        """Send ``record`` to ``destination`` as function ``spec``'s role allows (a
        schedule's dead-letter record)."""
        ...

    def on_final(self, listener: FinalListener) -> None:
        """Call ``listener`` at the end of every asynchronous event (a schedule's report)."""
        ...


class Invoking(Protocol):
    """Invoking functions, as a caller inside the router does."""

    async def invoke_outcome(
        self, name: str, payload: Any = None, client_context: Any = None, stream: Any = None
    ) -> Outcome:
        """Decode ``payload`` for function ``name`` and invoke it synchronously."""
        ...

    async def invoke(self, name: str, payload: Any = None) -> Any:
        """Invoke synchronously; the decoded result, or the exception the outcome stands for."""
        ...

    async def invoke_async(self, name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation; its request id once it is durable."""
        ...

    async def send(
        self, spec: FunctionSpec, destination: Destination, record: bytes, key: str
    ) -> None:
        """Send ``record`` to ``destination`` as function ``spec``'s role allows."""
        ...
