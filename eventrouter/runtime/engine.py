"""The engine: runs a router's functions and sources under one event loop.

>>> async with Engine(router, state_dir=".eventrouter") as engine:
...     receipt = await engine.invoke("charge", {"amount": 3})
...     request_id = await engine.invoke_async("send_receipt", {"order": 1})
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import msgspec
import structlog

from eventrouter.config import ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT
from eventrouter.errors import (
    EventRouterError,
    FunctionError,
    FunctionTimeout,
    InvalidRequestContent,
    PayloadTooLarge,
    Throttled,
)
from eventrouter.events import new_request_id
from eventrouter.observability.function_logs import capturing_output
from eventrouter.observability.logging import configure_logging, flush_logs
from eventrouter.observability.metrics import Metrics
from eventrouter.router import Router
from eventrouter.runtime.asynchronous import AsyncPolicy, function_queue
from eventrouter.runtime.concurrency import Slots
from eventrouter.runtime.invoker import FunctionState, Invoker, Outcome, Status
from eventrouter.store.sqlite import EventStore

log = structlog.get_logger("eventrouter")

DEFAULT_STATE_DIR = ".eventrouter"
DEFAULT_GRACE = 30.0

#: Called with (function, "on_success" | "on_failure", record, error) after each delivery
#: attempt; ``error`` is ``None`` when the record was delivered.
DeliveryListener = Callable[[str, str, bytes, BaseException | None], None]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class Engine:
    """Runs a router: the invoker, the durable queue and its consumers.

    ``consume=False`` makes a producer only (the CLI's ``invoke --async``): it can invoke and
    enqueue, but takes nothing from the queue. ``http="HOST:PORT"`` serves the HTTP routes and
    the Invoke API with uvicorn in the same event loop (port 0 picks a free port, then
    ``engine.http_port`` tells which).
    """

    def __init__(
        self,
        router: Router,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        consume: bool = True,
        thread_workers: int = 40,
        http: str | None = None,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self.router = router
        self.state_dir = os.fspath(state_dir or router.state_dir or DEFAULT_STATE_DIR)
        self.consume = consume
        #: Relative ``to_directory`` paths resolve under this folder when set (the testing
        #: helpers set their temporary directory, so tests never write into the project).
        self.directory_root: str | None = None
        self.metrics = Metrics()
        self.store: Any
        if router.async_queue is not None:
            from eventrouter.store.sqs import SqsStore

            longest = max((s.settings.timeout for s in router.functions.values()), default=3.0)
            self.store = SqsStore(router.async_queue, consumer=consume, lease_seconds=longest + 30)
        else:
            self.store = EventStore(self.state_dir, consumer=consume)
        self.slots = Slots(
            router.max_concurrency,
            [(name, spec.settings.reserved_concurrency) for name, spec in router.functions.items()],
        )
        self.invoker = Invoker(self, self.slots, self.metrics, thread_workers)
        from eventrouter.security.guard import Guard

        #: The permission checks (``router.enforce_permissions``).
        self.guard = Guard(router)
        self.policy = AsyncPolicy(self)
        self.delivery_listeners: list[DeliveryListener] = []
        self._http_address = http
        self._grace = grace
        self.http_server: Any = None
        #: One policy per pull-sourced function (Kafka streams, SQS queues).
        self.streams: list[Any] = []
        self._producers: dict[str, Any] = {}
        self._aws_clients: dict[tuple[str, str | None, str | None], Any] = {}
        self._aws_stack = contextlib.AsyncExitStack()
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
        for spec in self.router.functions.values():
            for destination in (spec.settings.on_success, spec.settings.on_failure):
                if destination is not None:
                    destination.check(self)
        self.guard.check_startup(announce=self.consume or self._http_address is not None)
        await self.store.open()
        self.store.on_enqueued = self.policy.notify
        if not structlog.is_configured():
            # structlog's default logger prints to sys.stdout, which becomes the invocations'
            # own stream below: the router's records go to stderr through our sink instead.
            configure_logging()
        self._output.enter_context(capturing_output())
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        if self.consume:
            self._task_group.start_soon(self.policy.run)
        self._started = True
        if self.consume:
            try:
                await self._start_streams(self._task_group)
            except BaseException:
                await self.shutdown(grace=0)
                raise
        if self._http_address is not None:
            from eventrouter.http.server import HttpServer

            self.http_server = HttpServer(self, self._http_address, self._grace)
            try:
                await self.http_server.start(self._task_group)
            except BaseException:
                await self.shutdown(grace=0)
                raise
        self.ready = True
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
        if self.http_server is not None:
            self.http_server.stop()
        self.policy.stop()
        for stream in self.streams:
            stream.stop()
        in_flight = self.policy.in_flight + sum(s.in_flight for s in self.streams)
        with anyio.move_on_after(grace) as scope:
            await self.policy.wait_idle()
            if self.http_server is not None:
                await self.http_server.wait_stopped()
            for stream in self.streams:
                await stream.wait_stopped()
        if scope.cancelled_caught:
            log.warning("grace period over, cancelling", in_flight=self.policy.in_flight)
        self._task_group.cancel_scope.cancel()
        try:
            await self._task_group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                await self.invoker.close_environments()
                await self.store.close()
                try:
                    await self._aws_stack.aclose()
                except Exception as exc:  # noqa: BLE001 - logged, shutdown goes on
                    log.warning("aws client close failed", error=repr(exc))
                for producer in self._producers.values():
                    try:
                        await producer.stop()  # flushes what is pending
                    except Exception as exc:  # noqa: BLE001 - logged, shutdown goes on
                        log.warning("kafka producer stop failed", error=repr(exc))
            self.invoker.close()
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

    async def _start_streams(self, task_group: anyio.abc.TaskGroup) -> None:
        """Start the pull sources: Kafka streams and SQS pollers."""
        from eventrouter.sources.kafka import Kafka
        from eventrouter.sources.sqs import Sqs

        for state in self.invoker.states.values():
            source = state.spec.source
            policy: Any
            if isinstance(source, Kafka):
                from eventrouter.runtime.stream import StreamPolicy

                policy = StreamPolicy(self, state, source)
            elif isinstance(source, Sqs):
                from eventrouter.runtime.queue_poll import SqsPolicy

                policy = SqsPolicy(self, state, source)
            else:
                continue
            self.streams.append(policy)
            await task_group.start(policy.run)

    async def kafka_producer(self, bootstrap_servers: str) -> Any:
        """The router's shared aiokafka producer for ``bootstrap_servers`` (started lazily)."""
        producer = self._producers.get(bootstrap_servers)
        if producer is None:
            from eventrouter._optional import require

            aiokafka = require("aiokafka", "kafka")
            producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
            self._producers[bootstrap_servers] = producer
            await producer.start()
        return producer

    async def aws_client(
        self, service: str, region: str | None = None, endpoint_url: str | None = None
    ) -> Any:
        """A shared aiobotocore client (credentials and region by botocore's usual chain)."""
        key = (service, region, endpoint_url)
        client = self._aws_clients.get(key)
        if client is None:
            from eventrouter._optional import require

            session = require("aiobotocore.session", "aws").get_session()
            client = await self._aws_stack.enter_async_context(
                session.create_client(service, region_name=region, endpoint_url=endpoint_url)
            )
            self._aws_clients[key] = client
        return client

    @property
    def http_port(self) -> int | None:
        """The port the HTTP server listens on (``None`` without ``http=``)."""
        return None if self.http_server is None else int(self.http_server.port)

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
        return self.result(outcome)

    async def invoke_outcome(
        self, name: str, payload: Any = None, client_context: Any = None
    ) -> Outcome:
        """Invoke ``name`` synchronously and return the :class:`Outcome` (errors included)."""
        state = self.state(name)
        data = encode_payload(payload, SYNC_PAYLOAD_LIMIT)
        request_id = new_request_id()
        if state.pool is not None:  # decoded in the function's environment
            return await self.invoker.invoke_value(
                state, msgspec.Raw(data), request_id, client_context=client_context
            )
        try:
            event = state.spec.event_decoder.decode(data)
        except msgspec.ValidationError as exc:
            return self.invoker.invalid_payload(state, exc, request_id)
        except msgspec.DecodeError as exc:
            raise InvalidRequestContent(f"Could not parse request body into json: {exc}") from None
        return await self.invoker.invoke_value(
            state, event, request_id, client_context=client_context
        )

    @staticmethod
    def result(outcome: Outcome) -> Any:
        """The decoded result of an outcome, or the exception it stands for."""
        status = outcome.status
        if status is Status.SUCCESS:
            assert outcome.response is not None
            return _decoder.decode(outcome.response)
        if status is Status.THROTTLED:
            raise Throttled("Rate Exceeded.", outcome.reason or "")
        assert outcome.error is not None
        if status is Status.TIMEOUT:
            raise FunctionTimeout(outcome.error)
        raise FunctionError(outcome.error)

    async def invoke_async(self, name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation; returns its request id once it is on disk."""
        self.state(name)
        data = encode_payload(payload, ASYNC_PAYLOAD_LIMIT)
        return await self.enqueue_invocation(name, data)

    async def enqueue_invocation(self, name: str, data: bytes) -> str:
        """Write an already encoded event to function ``name``'s queue."""
        if self._stopped or not self._started:
            raise EventRouterError("the engine is not running")
        request_id = new_request_id()
        await self.store.enqueue(function_queue(name), request_id, data)
        return request_id

    async def deliver(self, spec: Any, destination: Any, record: bytes, key: str) -> None:
        """Send ``record`` to ``destination`` for function ``spec``, as its role allows
        (``AccessDenied`` if it does not, when permissions are enforced)."""
        self.guard.check_send(spec, destination, key)
        await destination.send(self, record, key)

    def notify_delivery(
        self, function: str, kind: str, record: bytes, error: BaseException | None = None
    ) -> None:
        for listener in self.delivery_listeners:
            listener(function, kind, record, error)


def encode_payload(payload: Any, limit: int) -> bytes:
    """The payload as JSON bytes, checked against ``limit``."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
        if len(data) <= limit:
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
