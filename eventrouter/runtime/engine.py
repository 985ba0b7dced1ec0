"""The engine: runs a router's functions and sources under one event loop.

>>> async with Engine(router, state_dir=".eventrouter") as engine:
...     receipt = await engine.invoke("charge", {"amount": 3})
...     request_id = await engine.invoke_async("send_receipt", {"order": 1})
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
import msgspec
import structlog

from eventrouter.bus.buses import EventBuses
from eventrouter.config import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT
from eventrouter.control.mappings import Mappings
from eventrouter.control.plane import Control
from eventrouter.errors import (
    EventRouterError,
    InvalidRequestContent,
    PayloadTooLarge,
)
from eventrouter.events import new_request_id
from eventrouter.observability import tracing
from eventrouter.observability.function_logs import capturing_output
from eventrouter.observability.logging import ensure_logging, flush_logs
from eventrouter.observability.metrics import Metrics
from eventrouter.observability.usage import UsageLedger
from eventrouter.outcomes import Outcome, result_of
from eventrouter.registry import Registry
from eventrouter.runtime.delivery import Deliveries, DeliveryListener
from eventrouter.runtime.environments.warmup import provision
from eventrouter.runtime.history import History
from eventrouter.runtime.interface import Runtime
from eventrouter.runtime.invoker import FunctionState, Invoker, StreamSink
from eventrouter.runtime.policies.asynchronous import AsyncPolicy
from eventrouter.security.guard import Guard
from eventrouter.services.clients import Clients
from eventrouter.services.concurrency import Slots
from eventrouter.signature import decode_integral_floats
from eventrouter.store.base import Store, function_queue
from eventrouter.store.sqlite import EventStore, private_dir

if TYPE_CHECKING:
    from eventrouter.contract.spec import Destination, FinalListener, FunctionSpec, Running, Starter
    from eventrouter.http.server import HttpServer

log = structlog.get_logger("eventrouter")

DEFAULT_STATE_DIR = ".eventrouter"
DEFAULT_GRACE = 30.0

__all__ = ["DEFAULT_GRACE", "DEFAULT_STATE_DIR", "DeliveryListener", "Engine", "encode_payload"]


class PullPolicy(Protocol):
    """A model's policy for one pull source of one function."""

    in_flight: int

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = ...) -> None: ...

    def stop(self) -> None: ...

    async def wait_stopped(self) -> None: ...


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class Engine(Runtime):
    """Runs a router: the invoker, the durable queue and its consumers; the one
    implementation of :class:`~eventrouter.runtime.interface.Runtime`.

    ``consume=False`` makes a producer only (the CLI's ``invoke --async``): it can invoke and
    enqueue, but takes nothing from the queue. ``http="HOST:PORT"`` serves the HTTP routes and
    the Invoke API with uvicorn in the same event loop (port 0 picks a free port, then
    ``engine.http_port`` tells which).
    """

    def __init__(
        self,
        router: Registry,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        consume: bool = True,
        thread_workers: int = 40,
        http: str | None = None,
        grace: float = DEFAULT_GRACE,
        metrics_http: str | None = None,
        server: str = "eventrouter",
        tls: tuple[str, str] | None = None,
        http_socket: socket.socket | None = None,
        worker: int = 0,
        workers: int = 1,
    ) -> None:
        self.router = router
        #: Which worker of ``run --workers`` this is (0 alone): sources that one router of a
        #: state dir reads at a time run in worker 0 only.
        self.worker = worker
        self.state_dir = os.fspath(state_dir or router.state_dir or DEFAULT_STATE_DIR)
        self.consume = consume
        #: Relative ``to_directory`` paths resolve under this folder when set (the testing
        #: helpers set their temporary directory, so tests never write into the project).
        self.directory_root: str | None = None
        self.metrics = Metrics(enabled=router.metrics)
        self.history = History(self)
        self.usage = UsageLedger(self.metrics, router, self.state_dir) if router.metrics else None
        self.store: Store
        # A claimed event is leased past the longest timeout, so that no other consumer takes
        # it while it runs.
        longest = max((s.settings.timeout for s in router.functions.values()), default=3.0)
        if router.async_queue is not None:
            from eventrouter.store.sqs import SqsStore

            self.store = SqsStore(router.async_queue, consumer=consume, lease_seconds=longest + 30)
        else:
            self.store = EventStore(self.state_dir, consumer=consume, lease_seconds=longest + 30)
        shared_slots = None
        if workers > 1:  # reservations hold across the workers sharing the state dir
            private_dir(Path(self.state_dir))
            shared_slots = Path(self.state_dir) / "concurrency"
        self.slots = Slots(
            router.max_concurrency,
            [(name, spec.settings.reserved_concurrency) for name, spec in router.functions.items()],
            shared_slots,
        )
        self.invoker = Invoker(self, self.slots, self.metrics, thread_workers)
        #: The permission checks (``router.enforce_permissions``).
        self.guard = Guard(router)
        self.clients = Clients()
        self.deliveries = Deliveries(self)
        #: Told of every delivery attempt of a destination record (tests, benchmarks).
        self.delivery_listeners: list[DeliveryListener] = self.deliveries.listeners
        self.policy = AsyncPolicy(self)
        #: Lambda's control plane: run-time changes of functions and their pull sources.
        self.control = Control(self, self.state_dir, workers)
        self.mappings = Mappings(self, self.policy, self.state_dir, worker)
        self.buses = EventBuses(self, router)
        self._http_address = http
        self._metrics_address = metrics_http
        #: Which HTTP server serves ``http`` (``http/server.py: SERVERS``).
        self._server_kind = server
        #: (certificate file, key file): serve ``http`` over TLS.
        self._tls = tls
        #: ``http``'s listening socket, when a supervisor made it (``--workers``).
        self._http_socket = http_socket
        #: ``metrics_http``: ``/metrics`` and the dashboard alone, on a port of their own.
        self.metrics_server: HttpServer | None = None
        self._grace = grace
        self.http_server: HttpServer | None = None
        #: One policy per pull-sourced function (Kafka streams, SQS queues).
        self.streams: list[PullPolicy] = []
        #: What each started source left running, by function (a schedule's scheduler, an
        #: SNS or S3 feed: SQS pollers or an HTTP endpoint).
        self.running: dict[str, Running] = {}
        #: Every source started (``/readyz``).
        self.ready = False
        self._task_group: anyio.abc.TaskGroup | None = None
        #: What inline handlers print and log is tagged with their invocation while we run.
        self._output = contextlib.ExitStack()
        self._started = False
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(grace=0 if exc_info[0] is not None else DEFAULT_GRACE)

    async def start(self) -> None:
        """Check the configuration, open the store and start consuming."""
        # structlog's default logger prints to sys.stdout (which becomes the invocations' own
        # stream below): the router's records, from the first, go to stderr as run's do.
        ensure_logging()
        for spec in self.router.functions.values():
            for destination in (spec.settings.on_success, spec.settings.on_failure):
                if destination is not None:
                    destination.check(self)
        self.guard.check_startup(announce=self.consume or self._http_address is not None)
        tracing.activate(self.router)
        self.buses.check()
        await self.store.open()
        self.store.on_enqueued = self.policy.notify
        self.control.apply()
        if self.consume or self._http_address is not None:  # a service, not a client
            await provision(self.invoker.states.values(), self.invoker.executor)
        self._output.enter_context(capturing_output())
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        if self.consume:
            self._task_group.start_soon(self.policy.run)
        self._started = True
        serving = self.consume or self._http_address is not None
        if serving:
            # The zero every rate starts from (the store is not asked: start stays quick).
            await self.history.sample(queues=False)
            self._task_group.start_soon(self.history.run)
        if self.usage is not None:
            self._task_group.start_soon(self.usage.run)
        if self.consume:
            try:
                await self.mappings.start(self._task_group)
                if self.control.workers > 1:  # what one worker changes, all apply
                    self._task_group.start_soon(self.control.watch, self.mappings)
                await self._start_sources(self._task_group)
            except BaseException:
                # The task group reports the same failure again, wrapped: the caller gets
                # the source's own error (e.g. SourceError: no such stream).
                with contextlib.suppress(Exception):
                    await self.shutdown(grace=0)
                raise
        if self._http_address is not None or self._metrics_address is not None:
            await self._start_http(self._task_group)
        self.ready = True
        self.router.running = self
        # A router that only sends (the CLI's invoke) is a client, not a service: its start
        # and stop are not news.
        announce = log.info if self.consume or self.http_server is not None else log.debug
        announce(
            "router started",
            router=self.router.name,
            functions=len(self.router.functions),
            state_dir=self.state_dir,
            max_concurrency=self.router.max_concurrency,
            permissions="enforced" if self.guard.enforce else "not enforced",
        )

    async def shutdown(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop taking work, let in-flight invocations finish within ``grace`` seconds.

        Whatever is still running after that is cancelled; its events stay in the queue and
        are processed again after a restart.
        """
        if self._stopped or self._task_group is None:
            return
        self._stopped = True
        self.ready = False
        if self.router.running is self:
            self.router.running = None
        in_flight = self.policy.in_flight + sum(s.in_flight for s in self.streams)
        for server in (self.http_server, self.metrics_server):
            if server is not None:
                in_flight += server.in_flight
                server.stop()
        self.policy.stop()
        for stream in self.streams:
            stream.stop()
        running = list(dict.fromkeys(self.running.values()))  # one scheduler runs many
        for started in running:
            started.stop()
        with anyio.move_on_after(grace) as scope:
            await self.policy.wait_idle()
            for server in (self.http_server, self.metrics_server):
                if server is not None:
                    await server.wait_stopped()
            for stream in self.streams:
                await stream.wait_stopped()
            for started in running:
                await started.wait_stopped()
        if scope.cancelled_caught and grace > 0:  # (no grace: a start that failed)
            log.warning("grace period over, cancelling", in_flight=self.policy.in_flight)
        self._task_group.cancel_scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                if self.usage is not None:
                    await self.usage.flush()
                await self.invoker.close_environments()
                await self.store.close()
                await self.clients.close()
            self.invoker.close()
            self.slots.close()
            self.control.restore()
            self.mappings.restore()
            self._output.close()
            announce = log.info if self.consume or self._http_address is not None else log.debug
            announce(
                "router stopped",
                router=self.router.name,
                finished_in_flight=in_flight,
                metrics=self.metrics.snapshot(),
            )
            flush_logs()

    # -- invoking ----------------------------------------------------------------------------

    async def _start_http(self, task_group: anyio.abc.TaskGroup) -> None:
        from eventrouter.http.server import HttpServer, ObserveApp

        try:
            if self._http_address is not None:
                self.http_server = HttpServer(
                    self,
                    self._http_address,
                    self._grace,
                    server=self._server_kind,
                    tls=self._tls,
                    sock=self._http_socket,
                )
                await self.http_server.start(task_group)
            if self._metrics_address is not None:
                self.metrics_server = HttpServer(
                    self, self._metrics_address, self._grace, ObserveApp(self), self._server_kind
                )
                await self.metrics_server.start(task_group)
        except BaseException:
            await self.shutdown(grace=0)
            raise

    async def _start_sources(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start every source that names a starter (schedules, notification feeds), one call
        per starter with all its functions; pull sources start with their mappings."""
        kinds: dict[Starter, list[FunctionSpec]] = {}
        for state in self.invoker.states.values():
            source = state.spec.source
            if source is not None and source.starter is not None:
                kinds.setdefault(source.starter, []).append(state.spec)
        for starter, specs in kinds.items():
            self.running.update(await starter.start(specs, self, task_group))

    @property
    def http_port(self) -> int | None:
        """The port the HTTP server listens on (``None`` without ``http=``)."""
        return None if self.http_server is None else int(self.http_server.port)

    @property
    def metrics_port(self) -> int | None:
        """The port of ``metrics_http`` (``None`` without it)."""
        return None if self.metrics_server is None else int(self.metrics_server.port)

    def state(self, name: str) -> FunctionState:
        """The runtime state of function ``name`` (``FunctionNotFound`` if unknown)."""
        try:
            return self.invoker.states[name]
        except KeyError:
            self.router.function(name)  # raises FunctionNotFound
            raise

    async def invoke(self, name: str, payload: Any = None) -> Any:
        """Invoke ``name`` synchronously and return its result as JSON values.

        ``payload`` is any value msgspec can encode, or ``bytes`` holding JSON. Raises
        ``FunctionError`` (``FunctionTimeout`` for a timeout), ``Throttled``,
        ``FunctionNotFound``, ``InvalidRequestContent`` or ``PayloadTooLarge``.
        """
        outcome = await self.invoke_outcome(name, payload)
        return result_of(outcome)

    async def invoke_outcome(
        self,
        name: str,
        payload: Any = None,
        client_context: Any = None,
        stream: StreamSink | None = None,
    ) -> Outcome:
        """Invoke ``name`` synchronously and return the :class:`Outcome` (errors included)."""
        state = self.state(name)
        # Bytes for an inline function are decoded below: no need to check them first.
        data = encode_payload(payload, SYNC_PAYLOAD_LIMIT, validate=state.pool is not None)
        request_id = new_request_id()
        event: Any
        if state.pool is not None:  # decoded in the function's environment
            event = msgspec.Raw(data)
        else:
            try:
                event = state.spec.event_decoder.decode(data)
            except msgspec.ValidationError as exc:
                try:
                    event = decode_integral_floats(state.spec.event_decoder, data, exc)
                except msgspec.ValidationError as final:
                    return self.invoker.invalid_payload(state, final, request_id)
            except msgspec.DecodeError as exc:
                raise InvalidRequestContent(
                    f"Could not parse request body into json: {exc}"
                ) from None
        return await self.invoke_sync(
            state, event, request_id, client_context=client_context, stream=stream
        )

    def invoke_sync(
        self,
        state: FunctionState,
        event: Any,
        request_id: str,
        *,
        client_context: Any = None,
        http: Any = None,
        raw_result: bool = False,
        stream: StreamSink | None = None,
    ) -> Coroutine[Any, Any, Outcome]:
        """The synchronous model: one invocation, its outcome returned to the caller (a
        throttle is answered at once, never queued). The invoker's coroutine itself, not a
        wrapper around it: this is every HTTP request's path."""
        return self.invoker.invoke_value(
            state,
            event,
            request_id,
            http=http,
            client_context=client_context,
            raw_result=raw_result,
            stream=stream,
        )

    @staticmethod
    def result(outcome: Outcome) -> Any:
        """The decoded result of an outcome, or the exception it stands for."""
        return result_of(outcome)

    async def invoke_async(self, name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation; returns its request id once it is on disk."""
        self.state(name)
        data = encode_payload(payload, ASYNC_PAYLOAD_LIMIT)
        return await self.enqueue_invocation(name, data)

    async def enqueue_invocation(self, name: str, data: bytes, trace: str | None = None) -> str:
        """Write an already encoded event to function ``name``'s queue (continuing ``trace``,
        else the current span's, while tracing)."""
        if self._stopped or not self._started:
            raise EventRouterError("the engine is not running")
        request_id = new_request_id()
        await self.store.enqueue(function_queue(name), request_id, data, trace=trace)
        return request_id

    def on_final(self, listener: FinalListener) -> None:
        """Call ``listener`` at the end of every asynchronous event."""
        self.policy.final_listeners.append(listener)

    async def send(
        self, spec: FunctionSpec, destination: Destination, record: bytes, key: str
    ) -> None:
        """Send ``record`` to ``destination`` for function ``spec``, as its role allows
        (``AccessDenied`` if it does not, when permissions are enforced)."""
        await self.deliveries.send(spec, destination, record, key)


def encode_payload(payload: Any, limit: int, validate: bool = True) -> bytes:
    """The payload as JSON bytes, checked against ``limit``; bytes are checked to be JSON
    unless ``validate`` is false (their caller decodes them next anyway)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
        if validate and len(data) <= limit:
            try:
                _decoder.decode(data)
            except msgspec.DecodeError as exc:
                raise InvalidRequestContent(
                    f"Could not parse request body into json: {exc}"
                ) from None
    else:
        try:
            data = _encoder.encode(payload)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidRequestContent(f"payload cannot be encoded as JSON: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(
            f"{len(data)} byte payload is too large for this invocation type (limit {limit} bytes)"
        )
    return data
