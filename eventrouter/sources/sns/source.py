"""``Sns``: an SNS topic as the source of a function, through an SQS queue subscribed to it or
an HTTP subscription endpoint on the router's port; either way into the asynchronous path.

The message rules (Lambda's event, filter views, signatures) are
:mod:`eventrouter.sources.sns.rules`'s; the SQS poller :mod:`eventrouter.sources.feed`'s.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

import msgspec
import structlog

import eventrouter.sources.sns.rules as rules
from eventrouter._optional import require
from eventrouter.arns import region_of
from eventrouter.config import check_range
from eventrouter.contract.spec import Model, SourceBase, Starter, messaging
from eventrouter.errors import ConfigError
from eventrouter.filters import Matcher, compile_pattern
from eventrouter.keywords import CheckedStructMeta
from eventrouter.sources.feed import (
    FEEDS,
    Endpoint,
    FeedError,
    SqsFeed,
    ensure_queue,
    queue_name,
)
from eventrouter.sources.sqs.source import Sqs

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort

log = structlog.get_logger("eventrouter.notifications")
_encoder = msgspec.json.Encoder()


class Sns(SourceBase, frozen=True, dict=True, metaclass=CheckedStructMeta):
    """Invoke the function with the notifications of SNS topics, asynchronously.

    >>> @router.on_event(Sns("arn:aws:sns:us-east-1:123456789012:orders",
    ...                      filter_policy={"store": ["example_corp"]}))
    ... async def on_order(event, ctx): ...  # event["Records"][0]["Sns"]["Message"]

    ``delivery="sqs"`` (default): the router reads an SQS queue subscribed to the topic:
    ``queue`` names one the user subscribed (not with raw message delivery), or, without it,
    the router creates ``<router>-<function>-sns``, lets the topic send to it and subscribes
    it. ``delivery="http"``: an HTTP(S) subscription endpoint at ``path`` (default
    ``/sns/<function>``) on the router's port: subscription confirmations are confirmed (for
    these topics only), every message's signature is checked against its certificate
    (fetched over HTTPS from ``signing_cert_hosts`` only, cached), messages older than
    ``replay_window`` seconds or seen before are refused. ``endpoint_url`` (moto,
    LocalStack) is used for the SQS and SNS calls; ``signing_cert_endpoint`` is where
    certificates are fetched and subscriptions confirmed instead of the SNS host the message
    names (the URL's path and query, asked of that endpoint with the SNS host as ``Host``):
    a stand-in for SNS in tests.

    ``filter_policy`` is a subscription filter policy on the message attributes, or on the
    JSON message with ``filter_policy_scope="MessageBody"`` (EventBridge's pattern syntax,
    as SNS's).
    """

    model: ClassVar[Model] = "async"
    principal: ClassVar[str | None] = "sns.amazonaws.com"
    batch_size: ClassVar[int] = 1
    named_queue: ClassVar[None] = None
    starter: ClassVar[Starter | None] = FEEDS

    topic: str | tuple[str, ...]
    delivery: Literal["sqs", "http"] = "sqs"
    queue: str | None = None
    path: str | None = None
    filter_policy: dict[str, Any] | None = None
    filter_policy_scope: Literal["MessageAttributes", "MessageBody"] = "MessageAttributes"
    endpoint_url: str | None = None
    region: str | None = None
    signing_cert_hosts: str = rules.SNS_CERT_HOSTS
    signing_cert_endpoint: str | None = None
    replay_window: float = 3600.0
    wait_time_seconds: int = 20

    def __post_init__(self) -> None:
        topics = (self.topic,) if isinstance(self.topic, str) else tuple(self.topic)
        if not topics or not all(isinstance(t, str) and t.startswith("arn:") for t in topics):
            raise ConfigError(f"Sns topic={self.topic!r} must be one or more topic ARNs")
        msgspec.structs.force_setattr(self, "topic", topics)
        if self.delivery not in ("sqs", "http"):
            raise ConfigError(f"Sns delivery={self.delivery!r} must be 'sqs' or 'http'")
        if self.queue is not None and self.delivery != "sqs":
            raise ConfigError("Sns queue= goes with delivery='sqs'")
        if self.path is not None and (self.delivery != "http" or not self.path.startswith("/")):
            raise ConfigError("Sns path= (starting with /) goes with delivery='http'")
        if self.queue is None and self.delivery == "sqs" and len(topics) > 1:
            raise ConfigError("Sns: several topics through SQS need queue= (one queue for all)")
        if self.filter_policy_scope not in ("MessageAttributes", "MessageBody"):
            raise ConfigError(
                f"filter_policy_scope={self.filter_policy_scope!r} must be MessageAttributes "
                "or MessageBody"
            )
        check_range("replay_window", self.replay_window, 60, 86_400, unit="seconds")
        self.matcher  # noqa: B018 - validates the policy now

    @property
    def topics(self) -> tuple[str, ...]:
        return self.topic if isinstance(self.topic, tuple) else (self.topic,)

    @property
    def matcher(self) -> Matcher | None:
        if self.filter_policy is None:
            return None
        if "_matcher" not in self.__dict__:
            self.__dict__["_matcher"] = compile_pattern(self.filter_policy, "filter_policy")
        matcher: Matcher = self.__dict__["_matcher"]
        return matcher

    def endpoint_path(self, function: str) -> str | None:
        """The path of the HTTP subscription endpoint (``None``: delivered through SQS)."""
        if self.delivery != "http":
            return None
        return self.path or f"/sns/{function}"

    def trace_attributes(self) -> dict[str, Any]:
        return messaging("aws_sns", ",".join(self.topics))

    def describe(self) -> str:
        return f"sns:{','.join(t.rsplit(':', 1)[-1] for t in self.topics)} ({self.delivery})"

    def source_arns(self) -> list[str]:
        return list(self.topics)

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> None:
        return None

    def matches(self, message: dict[str, Any]) -> bool:
        matcher = self.matcher
        if matcher is None:
            return True
        if self.filter_policy_scope == "MessageBody":
            return matcher(rules.body_view(message))
        return matcher(rules.attribute_view(message))

    def feed(self, spec: FunctionSpec, runtime: SourcePort) -> SqsFeed | SnsEndpoint:
        if self.delivery == "http":
            return SnsEndpoint(self, spec, runtime)
        return sqs_feed(self, spec, runtime)


def sqs_feed(source: Sns, spec: FunctionSpec, runtime: SourcePort) -> SqsFeed:
    name = source.queue or queue_name(runtime.router.name, spec.name, "sns")
    queue = Sqs(
        name,
        endpoint_url=source.endpoint_url,
        region=source.region or region_of(source.topics[0]) or None,
        wait_time_seconds=source.wait_time_seconds,
    )
    subscription = {"arn": f"{source.topics[0]}:eventrouter"}

    def convert(body: str) -> list[bytes]:
        try:
            message = rules.parse_envelope(body)
        except rules.InvalidMessage as exc:
            raise FeedError(f"{exc} (a raw-delivery subscription is not supported)") from None
        if message["Type"] != "Notification" or message["TopicArn"] not in source.topics:
            return []
        if not source.matches(message):
            return []
        return [_encoder.encode(rules.lambda_event(message, subscription["arn"]))]

    async def setup() -> None:
        """Create the queue, let the topic send to it, subscribe it."""
        (topic,) = source.topics
        arn = await ensure_queue(runtime, queue, "sns.amazonaws.com", topic)
        client = await runtime.clients.aws("sns", queue.region, source.endpoint_url)
        answer = await client.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True
        )
        subscription["arn"] = answer["SubscriptionArn"]
        log.info("queue subscribed", function=spec.name, topic=topic, queue=arn)

    return SqsFeed(runtime, spec, queue, convert, setup=setup if source.queue is None else None)


class SnsEndpoint(Endpoint):
    """The HTTP subscription endpoint of one function (``delivery="http"``)."""

    def __init__(self, source: Sns, spec: FunctionSpec, runtime: SourcePort) -> None:
        super().__init__()
        self.source = source
        self.spec = spec
        self.runtime = runtime
        self._certificates: OrderedDict[str, Any] = OrderedDict()
        #: Message ids accepted within the replay window (ids -> when).
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._session: Any = None
        self.confirmed: list[str] = []

    def describe(self) -> dict[str, Any]:
        return {
            "path": self.source.endpoint_path(self.spec.name),
            "topics": list(self.source.topics),
        }

    async def closed(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one POST from SNS: ``(status, JSON body)``."""
        name = self.spec.name
        try:
            message = rules.parse_envelope(body)
            kind = headers.get("x-amz-sns-message-type")
            if kind is not None and kind != message["Type"]:
                raise rules.InvalidMessage("the message type header and body disagree")
            if message["TopicArn"] not in self.source.topics:
                raise rules.InvalidMessage(f"not a topic of this function: {message['TopicArn']}")
            await self._check_signature(message)
            self._check_fresh(message)
        except rules.InvalidMessage as exc:
            self.runtime.metrics.add("InvalidNotifications", name)
            log.warning("sns message refused", function=name, reason=str(exc))
            return 403, {"message": str(exc)}
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            await self._get(message.get("SubscribeURL", ""))
            self.confirmed.append(message["TopicArn"])
            log.info("sns subscription confirmed", function=name, topic=message["TopicArn"])
            return 200, {"message": "subscription confirmed"}
        if kind == "UnsubscribeConfirmation":
            log.info("sns subscription ended", function=name, topic=message["TopicArn"])
            return 200, {"message": "unsubscribed"}
        if kind != "Notification":
            return 400, {"message": f"unknown message type {kind!r}"}
        if message["MessageId"] in self._seen:
            log.warning("sns message replayed", function=name, message_id=message["MessageId"])
            return 409, {"message": "message already received"}
        if not self.source.matches(message):
            return 200, {"message": "filtered out"}
        subscription = headers.get("x-amz-sns-subscription-arn") or f"{message['TopicArn']}:http"
        event = _encoder.encode(rules.lambda_event(message, subscription))
        self._remember(message["MessageId"])  # before the await: a concurrent copy is a replay
        try:
            request_id = await self.runtime.enqueue_invocation(name, event)
        except BaseException:
            self._seen.pop(message["MessageId"], None)  # not stored: SNS may send it again
            raise
        self.runtime.metrics.add("NotificationsReceived", name)
        return 200, {"requestId": request_id}

    def _check_fresh(self, message: dict[str, Any]) -> None:
        try:
            sent = datetime.fromisoformat(message["Timestamp"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise rules.InvalidMessage("the Timestamp is not ISO 8601") from None
        if sent < time.time() - self.source.replay_window:
            raise rules.InvalidMessage("the message is older than the replay window")

    def _remember(self, message_id: str) -> None:
        now = time.time()
        self._seen[message_id] = now
        horizon = now - self.source.replay_window
        while self._seen and next(iter(self._seen.values())) < horizon:
            self._seen.popitem(last=False)

    async def _check_signature(self, message: dict[str, Any]) -> None:
        url = message.get("SigningCertURL") or ""
        rules.check_cert_url(url, self.source.signing_cert_hosts)
        key = self._certificates.get(url)
        if key is None:
            key = rules.public_key(await self._get(url))
            self._certificates[url] = key
            if len(self._certificates) > 100:
                self._certificates.popitem(last=False)
        rules.verify(message, key)

    async def _get(self, url: str) -> bytes:
        """GET ``url`` (an SNS host's): from ``signing_cert_endpoint`` when one is set."""
        rules.check_sns_url(url, self.source.signing_cert_hosts)
        parts = urlsplit(url)
        aiohttp = require("aiohttp", "aws")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        target, headers = url, {}
        if self.source.signing_cert_endpoint:
            query = f"?{parts.query}" if parts.query else ""
            target = self.source.signing_cert_endpoint.rstrip("/") + parts.path + query
            headers["Host"] = parts.netloc
        try:
            async with self._session.get(target, headers=headers) as response:
                if response.status != 200:
                    raise rules.InvalidMessage(f"GET {url} answered {response.status}")
                data: bytes = await response.read()
                return data
        except aiohttp.ClientError as exc:
            raise rules.InvalidMessage(f"GET {url} failed: {exc}") from None
