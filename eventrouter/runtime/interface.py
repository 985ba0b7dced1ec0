"""``Runtime``: what the parts of a running router may ask of the engine that runs them.

The invoker, the policies, the process pools, ``Context``, the HTTP app and the destinations
are handed a ``Runtime``, never the engine itself: this protocol is the whole of what they
may use, and the engine (``runtime/engine.py``) is its one implementation. Tests build the
parts on the real engine or on fakes of their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from eventrouter.bus.buses import EventBuses
    from eventrouter.contract.spec import Destination, FunctionSpec, Running
    from eventrouter.control.mappings import Mappings
    from eventrouter.control.plane import Control
    from eventrouter.observability.metrics import Metrics
    from eventrouter.observability.usage import UsageLedger
    from eventrouter.outcomes import Outcome
    from eventrouter.registry import Registry
    from eventrouter.runtime.delivery import Deliveries
    from eventrouter.runtime.history import History
    from eventrouter.runtime.invoker import FunctionState, Invoker, StreamSink
    from eventrouter.security.guard import Guard
    from eventrouter.services.clients import Clients
    from eventrouter.services.concurrency import Slots
    from eventrouter.store.base import Store


class Runtime(Protocol):
    """The services of a running router."""

    #: The functions and the router-wide settings.
    router: Registry
    metrics: Metrics
    #: Concurrency: the router's pool and each function's reservation.
    slots: Slots
    #: The durable queue of asynchronous invocations and embedded queues.
    store: Store
    #: The permission checks (``enforce_permissions``).
    guard: Guard
    #: The one caller of user code.
    invoker: Invoker
    #: Records to destinations, with the role check, metrics and listeners.
    deliveries: Deliveries
    #: Shared aiobotocore clients and Kafka producers.
    clients: Clients
    #: Relative ``to_directory`` paths resolve under this folder when set.
    directory_root: str | None
    #: Every source started (``/readyz``).
    ready: bool
    #: The embedded event buses and their rules.
    buses: EventBuses
    #: What each started source left running, by function (an HTTP push endpoint answers
    #: the deliveries to its path).
    running: dict[str, Running]
    #: One policy per pull-sourced function (streams, polled queues): lag, pollers.
    streams: list[Any]
    #: The last minutes of readings (the dashboard).
    history: History
    #: Lambda's control plane: run-time changes of the functions.
    control: Control
    #: The event source mappings (pull sources), started, stopped and changed.
    mappings: Mappings
    #: Usage written to the state dir (``None`` with metrics off, or for a producer).
    usage: UsageLedger | None

    async def invoke_sync(
        self,
        state: FunctionState,
        event: Any,
        request_id: str,
        *,
        client_context: Any = None,
        http: Any = None,
        raw_result: bool = False,
        stream: StreamSink | None = None,
    ) -> Outcome:
        """The synchronous model: invoke with an already decoded event (HTTP routes, the
        Invoke API and ``ctx.invoke`` all enter here); a handler's stream goes to ``stream``."""
        ...

    async def invoke_outcome(
        self,
        name: str,
        payload: Any = None,
        client_context: Any = None,
        stream: StreamSink | None = None,
    ) -> Outcome:
        """Decode ``payload`` for function ``name`` and invoke it synchronously."""
        ...

    async def invoke(self, name: str, payload: Any = None) -> Any:
        """Invoke synchronously; the decoded result, or the exception the outcome stands for."""
        ...

    async def invoke_async(self, name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation; its request id once it is durable."""
        ...

    async def enqueue_invocation(self, name: str, data: bytes, trace: str | None = None) -> str:
        """Queue an already encoded event for function ``name`` (continuing ``trace``)."""
        ...

    async def send(
        self, spec: FunctionSpec, destination: Destination, record: bytes, key: str
    ) -> None:
        """Send ``record`` to ``destination`` as function ``spec``'s role allows."""
        ...


class Service(Runtime, Protocol):
    """A runtime that can be started and stopped (what ``Router.asgi()`` owns)."""

    async def start(self) -> None: ...

    async def shutdown(self, grace: float = ...) -> None: ...
