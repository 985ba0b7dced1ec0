"""The contract between the layers: what a function is, what a source declares, what a
destination does, and the small ports a running router hands its parts. Nothing here runs
events; everything above names these types, never each other.

- :class:`FunctionSpec` — one registered function (built by the registry, read by all).
- :class:`Source` — every member any layer may ask of a function's event source, with the
  defaults on :class:`SourceBase` (which the sources subclass); ``named_queue`` and
  ``batch_size`` each source declares. How a source starts: a pull source (``queue`` and
  ``stream`` models) builds the adapter of its transport (:meth:`Source.adapter`), which its
  event source mapping runs with the policy of its model; an embedded queue names the queue
  it consumes (``named_queue``); any other source that runs something (schedules,
  notification feeds) names its :class:`Starter`. An HTTP route declares it
  (:meth:`Source.http_route`), a push endpoint its path (:meth:`Source.endpoint_path`).
  Nothing outside a source's own package reads a member the protocol does not name.
- :class:`Destination` — what ``on_success`` / ``on_failure`` accept.
- Ports — a part gets the port it uses, never the engine's bag
  (:class:`eventrouter.runtime.interface.Runtime`, which only the engine, the HTTP app and
  the control plane see): :class:`Services` (settings, metrics, store, clients: adapters,
  destinations), :class:`SourcePort` (that plus queueing, sending and the end of events:
  sources), :class:`Invoking` (invoking functions and sending as a function's role allows).
  The engine implements them all; tests hand parts fakes of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, Protocol

import msgspec

from eventrouter.errors import ConfigError
from eventrouter.signature import HandlerForm, decoder_for, handler_form

if TYPE_CHECKING:
    import anyio.abc

    from eventrouter.config import FunctionSettings
    from eventrouter.observability.metrics import Metrics
    from eventrouter.outcomes import Outcome
    from eventrouter.security.policy import Policy
    from eventrouter.services.clients import Clients
    from eventrouter.store.base import Store


#: ``sync``: invoked by a caller who waits (HTTP routes); ``async``: through the durable
#: queue (embedded queues, schedules, event-bus rules, notifications); ``queue``: polled
#: queues (SQS); ``stream``: polled, checkpointed partitions (Kafka; Kinesis and DynamoDB
#: Streams shards).
Model = Literal["sync", "async", "queue", "stream"]
MODELS: tuple[Model, ...] = ("sync", "async", "queue", "stream")


class HttpRoute(NamedTuple):
    """An HTTP route as the HTTP app matches it."""

    template: str
    #: A regular expression for templates with parameters (``None``: a literal path).
    pattern: str | None
    methods: tuple[str, ...]
    #: The names of its path parameters.
    params: tuple[str, ...]
    #: Who must sign its requests (``"NONE"``, ``"AWS_IAM"``).
    auth: str


class Running(Protocol):
    """What a started source leaves running: the engine stops it and waits at shutdown."""

    def stop(self) -> None: ...

    async def wait_stopped(self) -> None: ...

    def readings(self) -> dict[str, Any]:
        """What the dashboard shows of it (``pollers``...)."""
        ...


class PushEndpoint(Running, Protocol):
    """A source that answers its service's pushes on the router's port
    (:meth:`Source.endpoint_path`): an SNS HTTP subscription, an S3 webhook."""

    async def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer to one push."""
        ...


class Starter(Protocol):
    """Starts every source of one kind (all a router's schedules, each notification feed)."""

    async def start(
        self,
        specs: Sequence[FunctionSpec],
        port: SourcePort,
        task_group: anyio.abc.TaskGroup,
    ) -> dict[str, Running]:
        """Start the sources of ``specs``; what runs, by function name."""
        ...


class Source(Protocol):
    """A function's event source."""

    @property
    def model(self) -> Model: ...

    @property
    def principal(self) -> str | None:
        """The service principal its invocations are checked as (``None``: the caller's)."""
        ...

    #: The embedded queue an ``async`` source consumes (``None``: its function's own).
    @property
    def named_queue(self) -> str | None: ...

    #: Events per invocation (1: one event each).
    @property
    def batch_size(self) -> int: ...

    #: Starts the sources of its kind (``None``: nothing to start, or a pull source).
    @property
    def starter(self) -> Starter | None: ...

    def source_arns(self) -> list[str]:
        """The ``aws:SourceArn`` values to check at start-up (empty: checked once known)."""
        ...

    def describe(self) -> str: ...

    def trace_attributes(self) -> dict[str, Any]:
        """The span attributes of its invocations (OpenTelemetry's conventions)."""
        ...

    def bind(self, function: str) -> Source:
        """The source of function ``function`` (a schedule or rule named after it)."""
        ...

    def adapter(self, spec: FunctionSpec, port: SourcePort) -> Any:
        """The transport of a pull source, for the policy of its model (``None`` otherwise)."""
        ...

    def single_reader(self, port: SourcePort) -> bool:
        """Whether one router of a state dir reads it at a time (worker 0 of ``--workers``)."""
        ...

    def http_route(self) -> HttpRoute | None:
        """The route of a synchronous HTTP source."""
        ...

    def endpoint_path(self, function: str) -> str | None:
        """The path on the router's port where its service pushes (``None``: none)."""
        ...

    def mapping_document(self) -> dict[str, Any]:
        """The fields of Lambda's ``EventSourceMappingConfiguration`` it sets."""
        ...

    def with_changes(self, **fields: Any) -> Source:
        """A copy with ``fields`` changed (``UpdateEventSourceMapping``); ``ConfigError``
        naming a field the source does not have."""
        ...


class SourceBase(msgspec.Struct, frozen=True):
    """The defaults of :class:`Source`'s members; each source overrides what it has."""

    starter: ClassVar[Starter | None] = None

    def source_arns(self) -> list[str]:
        return []

    def trace_attributes(self) -> dict[str, Any]:
        return {}

    def bind(self, function: str) -> Source:
        return self  # type: ignore[return-value]  # every subclass is a Source

    def adapter(self, spec: FunctionSpec, port: SourcePort) -> Any:
        return None

    def single_reader(self, port: SourcePort) -> bool:
        return False

    def http_route(self) -> HttpRoute | None:
        return None

    def endpoint_path(self, function: str) -> str | None:
        return None

    def mapping_document(self) -> dict[str, Any]:
        return {}

    def describe(self) -> str:
        return source_label(self)

    def with_changes(self, **fields: Any) -> Source:
        names = {"batching_window": "batching window", "batch_size": "batch size"}
        for name in fields:
            if name not in self.__struct_fields__:
                raise ConfigError(f"{self.describe()} has no {names.get(name, name)}")
        return msgspec.structs.replace(self, **fields)  # type: ignore[return-value]


class QueueInfo(NamedTuple):
    """What a polled queue's adapter learns when it connects."""

    url: str
    arn: str
    #: Seconds a received message stays invisible.
    visibility_timeout: int


def messaging(system: str, destination: str) -> dict[str, Any]:
    """The span attributes of a function fed by a messaging system (OpenTelemetry's
    messaging conventions): what a source's ``trace_attributes()`` returns."""
    return {
        "faas.trigger": "pubsub",
        "messaging.system": system,
        "messaging.destination.name": destination,
        "messaging.operation.type": "process",
    }


def source_label(source: object) -> str:
    """A source as the user wrote it, shortly: ``Sqs('orders')``, ``Sns('arn:...')``."""
    fields: tuple[str, ...] = getattr(source, "__struct_fields__", ())
    first = getattr(source, fields[0], None) if fields else None
    if isinstance(first, tuple):  # Kafka's topics, Sns's topic ARNs: as written
        first = first[0] if len(first) == 1 else list(first)
    return f"{type(source).__name__}({first!r})" if first is not None else type(source).__name__


@dataclass(slots=True, eq=False)
class FunctionSpec:
    """One registered function: its handler, settings, source and payload codec."""

    name: str
    handler: Callable[..., Any]
    settings: FunctionSettings
    source: Source | None
    is_async: bool
    takes_context: bool
    payload_type: Any
    #: Decodes one event (or one message of a batch) into what the handler asks for.
    decoder: msgspec.json.Decoder[Any]
    #: Decodes the payload of a direct invocation (a list of messages for a batch handler).
    event_decoder: msgspec.json.Decoder[Any]
    batch: bool
    #: An HTTP-sourced handler that asks for API Gateway's event rather than a typed body.
    http_raw: bool = False
    #: The handler's return annotation (for the OpenAPI document).
    return_type: Any = None
    init: Callable[[], Any] | None = None
    #: Seconds spent importing the handler's module, when the loader measured it.
    import_duration: float = 0.0
    #: Who may invoke the function (``None``: nobody, when permissions are enforced).
    resource_policy: Policy | None = None
    #: What the function may do (``None``: nothing, when permissions are enforced).
    role: Policy | None = None
    #: ``router.external``: the command of a process speaking the Runtime API.
    command: tuple[str, ...] | None = None
    #: Environment variables added for the function's processes, and their directory.
    environment: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        """Whether the function runs in execution environments of its own."""
        return self.settings.isolation == "process"

    @property
    def module(self) -> str:
        return getattr(self.handler, "__module__", "?")


def pull_decoder(spec: FunctionSpec) -> tuple[HandlerForm, msgspec.json.Decoder[Any] | None]:
    """The form of a pull-source handler and the decoder of one record (``None``: raw)."""
    form, item = handler_form(spec.payload_type)
    if form == "raw":
        return form, None
    if form == "record":
        return form, spec.decoder
    return form, decoder_for(item, spec.name)


class Destination(Protocol):
    """What ``on_success`` / ``on_failure`` accept."""

    def describe(self) -> str: ...

    def permission(self, key: str) -> tuple[str, str]:
        """The action and resource ARN a role must allow for the record of event ``key``."""
        ...

    def check(self, services: Services) -> None:
        """Raise ``ConfigError`` at start-up if the destination cannot work."""

    async def send(self, services: Services, record: bytes, key: str) -> None: ...


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

    #: The event buses it declares (``EventBus`` settings).
    @property
    def buses(self) -> Sequence[Any]: ...

    #: Whether permissions are checked (``Router(enforce_permissions=True)``).
    @property
    def enforce_permissions(self) -> bool | None: ...

    #: The credentials callers sign with, by access key (``None``: none given).
    @property
    def credentials(self) -> Any: ...


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


class Sending(Protocol):
    """Sending a record as a function's role allows."""

    async def send(
        self, spec: FunctionSpec, destination: Destination, record: bytes, key: str
    ) -> None:
        """Send ``record`` to ``destination`` as function ``spec``'s role allows."""
        ...


class SourcePort(Services, Sending, Protocol):
    """What a source's adapter or starter may use (a schedule sends its dead-letter
    records)."""

    def on_final(self, listener: FinalListener) -> None:
        """Call ``listener`` at the end of every asynchronous event (a schedule's report)."""
        ...


class Invoking(Sending, Protocol):
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
