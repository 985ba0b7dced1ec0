"""The registry of functions: ``FunctionSpec`` and ``Registry``. No I/O happens here.

``eventrouter.router.Router`` is the registry users build; everything that runs a router
(the engine, the policies, the HTTP app) depends on this module only, never on ``Router``.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from eventrouter.config import FunctionSettings, build_settings, check_int
from eventrouter.contract.spec import FunctionSpec, SourceBase
from eventrouter.contract.spec import Source as AnySource
from eventrouter.errors import ConfigError, EventRouterError, FunctionNotFound
from eventrouter.events import HttpEvent
from eventrouter.keywords import CheckedMeta
from eventrouter.security.permissions import Permission, execution_role, resource_policy
from eventrouter.signature import (
    RAW_TYPES,
    decoder_for,
    handler_form,
    payload_type,
)
from eventrouter.sources.bus.rules import EventBus, EventRule
from eventrouter.sources.http.source import Http
from eventrouter.sources.queue.source import Queue
from eventrouter.sources.sqs.source import Sqs

if TYPE_CHECKING:  # the sources a function may have; each imported where it is used
    from eventrouter.sources.dynamodb_streams.source import DynamoDBStream
    from eventrouter.sources.kafka.source import Kafka
    from eventrouter.sources.kinesis.source import Kinesis
    from eventrouter.sources.s3.source import S3
    from eventrouter.sources.schedule.source import Schedule
    from eventrouter.sources.sns.source import Sns

#: The sources a function may name (each follows :class:`eventrouter.contract.spec.Source`).
if TYPE_CHECKING:
    Source: TypeAlias = (
        Queue | Http | Kafka | Kinesis | DynamoDBStream | Sqs | Sns | S3 | Schedule | EventRule
    )
else:
    Source = Any

F = TypeVar("F", bound=Callable[..., Any])

_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def build_spec(
    handler: Callable[..., Any], name: str, source: AnySource | None, settings: FunctionSettings
) -> FunctionSpec:
    if not callable(handler):
        raise ConfigError(f"function {name!r}: the handler {handler!r} is not callable")
    if source is not None and not isinstance(source, SourceBase):
        raise ConfigError(f"function {name!r}: {source!r} is not a source this router knows")
    model = source.model if source is not None else None
    tp, takes_context, return_type = payload_type(handler, name)
    batch = source is not None and model == "async" and source.batch_size > 1
    item_type = tp
    if batch:
        origin = typing.get_origin(tp)
        if tp in RAW_TYPES or tp is list:
            item_type = inspect.Parameter.empty
        elif origin is list:
            (item_type,) = typing.get_args(tp) or (Any,)
        else:
            raise ConfigError(
                f"function {name!r}: batch_size > 1 hands the handler a list of messages; "
                f"annotate the first parameter as list[...] (it is {tp!r})"
            )
    return FunctionSpec(
        name=name,
        handler=handler,
        settings=settings,
        source=source,
        is_async=inspect.iscoroutinefunction(handler),
        takes_context=takes_context,
        payload_type=tp,
        decoder=decoder_for(item_type, name),
        event_decoder=decoder_for(tp, name),
        batch=batch,
        http_raw=model == "sync" and (tp is HttpEvent or handler_form(tp)[0] == "raw"),
        return_type=return_type,
        init=settings.init,
        resource_policy=resource_policy(name, settings.resource_policy, settings.permissions),
        role=execution_role(name, settings.role),
    )


def _is_handler(value: object) -> bool:
    """A function given where a source goes: bare ``@on_event`` decorating it."""
    return callable(value) and not isinstance(value, SourceBase)


class Registry(metaclass=CheckedMeta):
    """A named set of functions and the router-wide settings.

    >>> router = Router("shop", state_dir=".eventrouter")
    >>> @router.on_event(None, timeout=3.0)
    ... async def charge(order: dict, ctx) -> dict: ...

    ``state_dir`` holds the embedded durable queue (default ``.eventrouter``);
    ``max_concurrency`` caps the invocations in flight across every function; ``debug``
    adds stack traces to the error responses of HTTP routes. ``enforce_permissions`` checks
    every caller against the functions' resource policies and every action of a function
    against its role; ``credentials`` (a file path) holds the access keys and API keys of
    the callers (default: ``EVENTROUTER_CREDENTIALS`` and the environment). With
    ``async_queue=Sqs(...)`` shared by several hosts, ``lease_table`` names the DynamoDB table
    through which they fire each due time of a schedule once.
    """

    def __init__(
        self,
        name: str = "default",
        *,
        state_dir: str | None = None,
        max_concurrency: int = 1000,
        debug: bool = False,
        async_queue: Sqs | None = None,
        enforce_permissions: bool = False,
        credentials: Any = None,
        lease_table: str | None = None,
        buses: Iterable[EventBus] = (),
        metrics: bool = True,
        metrics_readers: Iterable[str] = (),
        tracing: Any = True,
        stream_bandwidth_cap: bool = True,
    ) -> None:
        check_int("max_concurrency", max_concurrency, 1, 1_000_000)
        self.name = name
        self.state_dir = state_dir
        self.max_concurrency = max_concurrency
        #: Put stack traces in the HTTP error responses of application routes.
        self.debug = debug
        if async_queue is not None and not isinstance(async_queue, Sqs):
            raise ConfigError(f"async_queue={async_queue!r} must be Sqs(...) or None")
        #: Where asynchronous invocations wait: SQS (shared by several hosts) or, by
        #: default, the embedded SQLite queue in ``state_dir``.
        self.async_queue = async_queue
        #: The DynamoDB table where hosts sharing ``async_queue`` agree that each due time of
        #: a schedule fires once (conditional writes; created when missing).
        self.lease_table = lease_table
        #: Declared event buses (a bus named by a rule, and ``default``, exist anyway).
        self.buses = list(buses)
        for bus in self.buses:
            if not isinstance(bus, EventBus):
                raise ConfigError(f"buses: {bus!r} is not an EventBus(...)")
        #: The runtime serving this router, while one does (``put_events``).
        self.running: Any = None
        self.functions: dict[str, FunctionSpec] = {}
        self.enforce_permissions = enforce_permissions
        self.credentials = credentials
        #: Count and time every invocation (``Invocations``, ``Duration``, usage for
        #: ``python -m eventrouter usage``); off, only the counters of rarer things (errors,
        #: throttles, drops...) are kept. ``/metrics`` and the dashboard answer either way.
        self.metrics = bool(metrics)
        #: Under enforced permissions, who may read ``/metrics`` and the dashboard on the
        #: router's port (SigV4-signed; user names or IAM ARNs, as in the credentials file).
        self.metrics_readers = list(metrics_readers)
        #: OpenTelemetry spans and trace propagation (``observability/tracing.py``): ``True``
        #: uses the global tracer provider when one is set, a ``TracerProvider`` that one,
        #: ``False`` none.
        self.tracing = tracing
        #: Streamed responses past their first 6 MB go no faster than 2 MB/s, as Lambda's
        #: (``eventrouter/streaming.py``); ``False`` lifts that cap (the 200 MB limit stays).
        self.stream_bandwidth_cap = bool(stream_bandwidth_cap)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, functions={sorted(self.functions)})"

    async def put_events(self, entries: list[dict[str, Any]]) -> list[dict[str, str]]:
        """Put events on the embedded buses of the running router, in ``PutEvents``' entry
        shape; one ``{"EventId"}`` or ``{"ErrorCode", "ErrorMessage"}`` per entry."""
        if self.running is None:
            raise EventRouterError(f"router {self.name!r} is not running")
        result: list[dict[str, str]] = await self.running.buses.put_events(entries)
        return result

    def on_event(
        self,
        source: Source | None = None,
        *,
        name: str | None = None,
        env: dict[str, str] | None = None,
        **settings: Any,
    ) -> Callable[[F], F]:
        """Register the decorated handler as a function; the handler is returned unchanged.

        ``source=None`` means the function is invoked directly (``invoke``, asynchronous
        invoke); ``Queue("name")`` consumes a named embedded queue. ``env``: environment
        variables of an ``isolation="process"`` function's processes. Bare ``@on_event``
        (no parentheses) is the same as ``@on_event()``.
        """
        if source is not None and _is_handler(source):
            if settings or name is not None or env is not None:
                raise ConfigError(
                    f"on_event({source!r}, ...): the first argument is the source "
                    "(Http(...), Queue(...), None...), not the handler"
                )
            handler: Any = source
            self.on_event()(handler)
            return handler  # type: ignore[no-any-return]
        parsed = build_settings(settings)
        if env is not None:
            if parsed.isolation != "process":
                raise ConfigError(
                    "env= sets the environment of a function's own processes: it needs "
                    "isolation='process' (an inline function shares the router's)"
                )
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
                raise ConfigError(f"env={env!r} must map names to strings")

        def register(handler: F) -> F:
            fname = name if name is not None else getattr(handler, "__name__", None)
            if not isinstance(fname, str) or not _FUNCTION_NAME.fullmatch(fname):
                raise ConfigError(
                    f"function name {fname!r} is not valid: use 1 to 64 letters, digits, '-' or '_'"
                )
            if fname in self.functions:
                raise ConfigError(
                    f"function {fname!r} is registered twice in router {self.name!r} "
                    f"(by {self.functions[fname].module} and {handler.__module__}); "
                    "give one of them name=..."
                )
            # A source named after its function (schedules, rules) is bound to its name.
            bound = source.bind(fname) if source is not None else None
            if isinstance(source, Queue):
                for other in self.functions.values():
                    if isinstance(other.source, Queue) and other.source.name == source.name:
                        raise ConfigError(
                            f"function {fname!r}: queue {source.name!r} is already consumed by "
                            f"function {other.name!r}; a queue has one consumer function"
                        )
            elif isinstance(source, Http):
                self._check_route(fname, source)
            spec = self.functions[fname] = build_spec(handler, fname, bound, parsed)
            spec.environment = dict(env or {})
            return handler

        return register

    def external(
        self,
        name: str,
        command: list[str] | tuple[str, ...],
        source: Source | None = None,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        **settings: Any,
    ) -> None:
        """Register a function in any language: a process speaking Lambda's Runtime API.

        >>> router.external("resize", command=["node", "index.js"], source=Queue("images"),
        ...                 timeout=30, memory_mb=512, env={"BUCKET": "thumbs"})

        The router starts ``command`` (in ``cwd``, with ``env`` added to its environment and
        ``AWS_LAMBDA_RUNTIME_API`` pointing at the router) once per execution environment;
        the function gets its events in Lambda's shapes and runs with
        ``isolation="process"``: every source, destination, timeout and limit applies.
        """
        if isinstance(command, str) or not command or not all(isinstance(c, str) for c in command):
            raise ConfigError(
                f"function {name!r}: command={command!r} must be a non-empty list of strings"
            )
        if env is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise ConfigError(f"function {name!r}: env must map strings to strings")
        if settings.setdefault("isolation", "process") != "process":
            raise ConfigError(f"function {name!r}: an external function runs isolation='process'")
        if "init" in settings:
            raise ConfigError(f"function {name!r}: an external function initialises itself")

        def runtime_api(event: Any) -> Any:  # never called: the command runs the function
            raise NotImplementedError

        runtime_api.__name__ = name
        self.on_event(source, name=name, **settings)(runtime_api)
        spec = self.functions[name]
        spec.command = tuple(command)
        spec.environment = dict(env or {})
        spec.cwd = cwd

    def _check_route(self, fname: str, source: Http) -> None:
        route = source.spec
        for other in self.functions.values():
            if not isinstance(other.source, Http):
                continue
            theirs = other.source.spec
            same_path = theirs.template == route.template or (
                theirs.pattern is not None
                and route.pattern is not None
                and theirs.pattern == route.pattern
            )
            clash = set(theirs.methods) & set(route.methods)
            if same_path and clash:
                raise ConfigError(
                    f"function {fname!r}: {sorted(clash)[0]} {route.template} is already "
                    f"served by function {other.name!r}"
                )

    def init(self, function_name: str) -> Callable[[F], F]:
        """Register an init hook for ``function_name``: it runs once before the first invocation.

        >>> @router.init("charge")
        ... async def connect() -> None: ...
        """

        def register(hook: F) -> F:
            self.function(function_name).init = hook
            return hook

        return register

    def add_permission(
        self,
        function_name: str,
        principal: str,
        *,
        action: str = "lambda:InvokeFunction",
        source_arn: str | None = None,
        source_account: str | None = None,
        sid: str | None = None,
    ) -> None:
        """Let ``principal`` invoke ``function_name``, as Lambda's ``AddPermission``.

        >>> router.add_permission("charge", principal="billing")
        >>> router.add_permission("charge", "sqs.amazonaws.com", source_arn=queue_arn)
        >>> router.add_permission("hello", "*", action="lambda:InvokeFunctionUrl")
        """
        spec = self.function(function_name)
        permission = Permission(
            principal=principal,
            action=action,
            source_arn=source_arn,
            source_account=source_account,
            sid=sid,
        )
        added = resource_policy(function_name, None, [permission])
        assert added is not None
        if spec.resource_policy is None:
            spec.resource_policy = added
        else:
            spec.resource_policy = spec.resource_policy.extended(added.statements)

    def function(self, name: str) -> FunctionSpec:
        """The registered function ``name``; ``FunctionNotFound`` if there is none."""
        try:
            return self.functions[name]
        except KeyError:
            raise FunctionNotFound(f"Function not found: {name}") from None
