"""Feeds: notifications from services that push (SNS, S3) into the asynchronous
invocation path.

A router is rarely reachable from the internet, so a push arrives one of two ways:

- **through an SQS queue** subscribed to the topic / named in the bucket's notification:
  :class:`SqsFeed` polls it, turns each message into Lambda's event(s), writes them to the
  function's durable queue (the embedded store or the shared one) and only then deletes the
  message: at least once, across ``kill -9``;
- **over HTTP** on the router's port (an SNS HTTP subscription, an S3-compatible store's
  webhook): the endpoint answers 2xx only once the event is durable.

From the store on, the event is an asynchronous invocation like any other: retries,
maximum event age, destinations (:mod:`eventrouter.runtime.policies.asynchronous`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import anyio
import anyio.abc
import structlog

from eventrouter.contract.spec import Running, source_label
from eventrouter.errors import EventRouterError, source_failure
from eventrouter.observability.tracing import sqs_trace
from eventrouter.services.clients import error_code, sqs_queue_url
from eventrouter.services.hiccups import Hiccups

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort
    from eventrouter.sources.sqs.source import Sqs

log = structlog.get_logger("eventrouter.notifications")

#: Convert one message's body into the encoded Lambda events it makes (none: filtered out).
Convert = Callable[[str], list[bytes]]


class FeedError(EventRouterError):
    """A message that cannot become an event (left on the queue for its redrive policy)."""


class SqsFeed:
    """Moves the messages of one SQS queue into one function's durable queue."""

    def __init__(
        self,
        runtime: SourcePort,
        spec: FunctionSpec,
        queue: Sqs,
        convert: Convert,
        *,
        pollers: int = 2,
        setup: Callable[[], Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.spec = spec
        self.queue = queue
        self.convert = convert
        self.pollers = pollers
        #: Creates the queue and its subscription first, when the router is to do it.
        self.setup = setup
        from eventrouter.sources.sqs.source import SqsAdapter  # the sources import this module

        self.adapter = SqsAdapter(queue, runtime.clients)
        self._stopping = False
        self._scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()
        #: Messages turned into invocations, and dropped (filtered out).
        self.fed = 0
        self.dropped = 0
        #: Set (and replaced) after each batch of messages: tests wait on it.
        self.progress = anyio.Event()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            if self.setup is not None:
                await self.setup()
            info = await self.adapter.connect()
            log.info(
                "notification feed started", function=self.spec.name, queue=info.arn or info.url
            )
            task_status.started()
            with anyio.CancelScope() as self._scope:
                async with anyio.create_task_group() as tg:
                    for _ in range(self.pollers):
                        tg.start_soon(self._poll)
        finally:
            self._stopped.set()

    def stop(self) -> None:
        """Stop receiving; a message being written to the store is finished first."""
        self._stopping = True
        if self._scope is not None:
            self._scope.cancel()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def readings(self) -> dict[str, Any]:
        return {"pollers": self.pollers}

    async def wait_until(self, check: Callable[[], bool], within: float = 20.0) -> None:
        """Wait until ``check()`` holds, looking again after each batch of messages."""
        with anyio.fail_after(within):
            while not check():
                await self.progress.wait()

    async def _poll(self) -> None:
        hiccups = Hiccups("notification receive failed", self.runtime.metrics, self.spec.name)
        while not self._stopping:
            try:
                messages = await self.adapter.receive(
                    10, self.queue.wait_time_seconds, ["AWSTraceHeader"]
                )
                hiccups.ok()
            except Exception as exc:  # noqa: BLE001 - an SQS hiccup must not stop the feed
                await hiccups.failed(exc)
                continue
            if messages:
                with anyio.CancelScope(shield=True):  # written and deleted, or neither
                    await self._feed(messages)
                self.progress.set()
                self.progress = anyio.Event()

    async def _feed(self, messages: list[dict[str, Any]]) -> None:
        done: list[dict[str, Any]] = []
        writes: list[tuple[bytes, str | None]] = []
        for message in messages:
            try:
                events = self.convert(message.get("Body", ""))
            except FeedError as exc:
                self.runtime.metrics.add("InvalidNotifications", self.spec.name)
                log.error(
                    "notification is not valid, left on the queue",
                    function=self.spec.name,
                    message_id=message.get("MessageId"),
                    error=str(exc),
                )
                continue
            if not events:
                self.dropped += 1
            trace = sqs_trace(message)  # the publisher's, where SNS or S3 passed one on
            writes.extend((event, trace) for event in events)
            done.append(message)
        try:
            async with anyio.create_task_group() as tg:  # one group commit for them all
                for data, trace in writes:
                    tg.start_soon(self.runtime.enqueue_invocation, self.spec.name, data, trace)
        except Exception as exc:  # noqa: BLE001 - left on the queue: received again later
            log.error("notifications not stored", function=self.spec.name, error=repr(exc))
            return
        self.fed += len(writes)
        self.runtime.metrics.add("NotificationsReceived", self.spec.name, len(writes))
        try:
            failed = await self.adapter.delete(done)
        except Exception as exc:  # noqa: BLE001 - delivered again later: at least once
            log.warning("notification delete failed", function=self.spec.name, error=repr(exc))
            return
        if failed:
            log.warning("notification delete failed", function=self.spec.name, ids=failed)


async def ensure_queue(
    runtime: SourcePort, queue: Sqs, service: str, source_arn: str, operator: str = "ArnEquals"
) -> str:
    """Create the queue unless it exists and let ``service`` (``sns.amazonaws.com``...) send
    to it from ``source_arn`` only (the ``aws:SourceArn`` condition, by ``operator``); its ARN."""
    client = await runtime.clients.aws("sqs", queue.region, queue.endpoint_url)
    try:
        url = await sqs_queue_url(client, queue.queue)
    except Exception as exc:
        if error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        url = (await client.create_queue(QueueName=queue.name))["QueueUrl"]
    arn: str = (await client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
        "Attributes"
    ]["QueueArn"]
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {operator: {"aws:SourceArn": source_arn}},
    }
    await client.set_queue_attributes(
        QueueUrl=url,
        Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})},
    )
    return arn


class Endpoint:
    """A notification endpoint on the router's HTTP port (the SNS subscription endpoint, the
    S3 webhook): ready at once, answered by :meth:`handle`, nothing to poll."""

    spec: FunctionSpec

    def __init__(self) -> None:
        self._stopped = anyio.Event()

    def describe(self) -> dict[str, Any]:
        """What the ready log line says of the endpoint."""
        raise NotImplementedError

    async def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one POST: ``(status, JSON body)``."""
        raise NotImplementedError

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        log.info("notification endpoint ready", function=self.spec.name, **self.describe())
        task_status.started()
        await self._stopped.wait()
        await self.closed()

    async def closed(self) -> None:
        """Release what the endpoint holds, once stopped."""

    def stop(self) -> None:
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def readings(self) -> dict[str, Any]:
        return {}


class Fed(Protocol):
    """A source whose service pushes (SNS, S3): it makes the feed of one function."""

    def feed(self, spec: FunctionSpec, port: SourcePort) -> SqsFeed | Endpoint: ...


class FeedStarter:
    """Starts the feed of each function whose source is pushed to (``Sns``, ``S3``)."""

    async def start(
        self, specs: Sequence[FunctionSpec], port: SourcePort, task_group: anyio.abc.TaskGroup
    ) -> dict[str, Running]:
        running: dict[str, Running] = {}
        for spec in specs:
            source = cast(Fed, spec.source)
            feed = source.feed(spec, port)
            running[spec.name] = feed
            try:
                await task_group.start(feed.run)
            except Exception as exc:
                raise source_failure(source_label(source), spec.name, exc) from exc
        return running


#: The one starter of pushed sources.
FEEDS = FeedStarter()


def queue_name(router: str, function: str, kind: str) -> str:
    """The name of a queue the router makes for a function (SQS: 80 characters, ``[\\w-]``)."""
    raw = f"{router}-{function}-{kind}"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in raw)[:80]
