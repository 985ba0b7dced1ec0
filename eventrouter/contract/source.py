"""The ``Source`` protocol: what the registry, the guard and the engine ask of a source.

A source is a frozen settings object given to ``on_event``. It names the model of Lambda's
that runs its events (``model``), the service principal its invocations are checked as and
the ARNs they carry (``principal``, :meth:`source_arns`), and, for a pull source, builds
the adapter that knows its transport (:meth:`adapter`). The engine starts every pull source
through the policy registered for its model; nothing in the engine or the policies names a
source class. Adding a pull source is one module: its settings, its adapter, and its name in
``eventrouter.registry.Source``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from eventrouter.registry import FunctionSpec
    from eventrouter.runtime.interface import Runtime

#: ``sync``: invoked by a caller who waits (HTTP routes); ``async``: through the durable
#: queue (embedded queues, schedules, event-bus rules); ``queue``: polled queues (SQS);
#: ``stream``: polled, checkpointed partitions (Kafka; Kinesis and DynamoDB Streams shards).
#: An ``async`` source may name the embedded queue it consumes (``named_queue``) or the
#: engine part that fires its events (``trigger``: ``"schedule"``, ``"bus"``).
Model = Literal["sync", "async", "queue", "stream"]
MODELS: tuple[Model, ...] = ("sync", "async", "queue", "stream")


class Source(Protocol):
    """A function's event source."""

    @property
    def model(self) -> Model: ...

    @property
    def principal(self) -> str | None:
        """The service principal its invocations are checked as (``None``: the caller's)."""
        ...

    def source_arns(self) -> list[str]:
        """The ``aws:SourceArn`` values to check at start-up (empty: checked once known)."""
        ...

    def describe(self) -> str: ...

    def adapter(self, spec: FunctionSpec, runtime: Runtime) -> Any:
        """The transport of a pull source, for the policy of its model (``None`` otherwise)."""
        ...


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


def source_label(source: Any) -> str:
    """A source as the user wrote it, shortly: ``Sqs('orders')``, ``Sns('arn:...')``."""
    fields = getattr(source, "__struct_fields__", ())
    first = getattr(source, fields[0], None) if fields else None
    if isinstance(first, tuple):  # Kafka's topics, Sns's topic ARNs: as written
        first = first[0] if len(first) == 1 else list(first)
    return f"{type(source).__name__}({first!r})" if first is not None else type(source).__name__
