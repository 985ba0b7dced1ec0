"""The ``Source`` protocol: everything any layer may ask of a function's event source.

A source is a frozen settings object given to ``on_event``. It names the model of Lambda's
that runs its events (``model``), the service principal its invocations are checked as and
the ARNs they carry (``principal``, :meth:`Source.source_arns`), and declares how it starts:

- a pull source (``queue`` and ``stream`` models) builds the adapter of its transport
  (:meth:`Source.adapter`); its event source mapping runs it with the policy of its model;
- an embedded queue names the queue it consumes (``named_queue``);
- any other source that runs something (schedules, notification feeds) names its
  :class:`Starter`, which starts the sources of that kind;
- an HTTP route declares it (:meth:`Source.http_route`), a push endpoint its path
  (:meth:`Source.endpoint_path`).

Every member is declared here, its default on :class:`SourceBase` (which the sources
subclass) when it has one; ``named_queue`` and ``batch_size`` each source declares. Nothing
outside a source's own package reads a member the protocol does not name. A new kind of
source is its package and its name in ``eventrouter.sources``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple, Protocol

import msgspec

from eventrouter.errors import ConfigError

if TYPE_CHECKING:
    import anyio.abc

    from eventrouter.contract.ports import SourcePort
    from eventrouter.contract.spec import FunctionSpec

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

    def with_changes(self, **fields: Any) -> Source:
        names = {"batching_window": "batching window", "batch_size": "batch size"}
        for field in fields:
            if field not in self.__struct_fields__:
                raise ConfigError(f"{source_label(self)} has no {names.get(field, field)}")
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
