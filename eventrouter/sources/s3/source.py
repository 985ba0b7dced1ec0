"""``S3``: a bucket's event notifications as the source of a function, through an SQS queue
(S3's notification target) or an S3-compatible store's webhook on the router's port (MinIO,
Ceph); either way into the asynchronous path.

The record rules (Lambda's shape, event-name, prefix and suffix filters) are
:mod:`eventrouter.sources.s3.rules`'s; the SQS poller :mod:`eventrouter.sources.feed`'s.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec
import structlog

import eventrouter.sources.s3.rules as rules
from eventrouter.arns import REGION
from eventrouter.contract.spec import Model, SourceBase, Starter
from eventrouter.errors import ConfigError
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
_decoder = msgspec.json.Decoder()


class S3(SourceBase, frozen=True, dict=True, metaclass=CheckedStructMeta):
    """Invoke the function with a bucket's event notifications, asynchronously, one record
    per invocation as Lambda does.

    >>> @router.on_event(S3("uploads", events=["s3:ObjectCreated:*"], prefix="images/",
    ...                     suffix=".jpg", queue="uploads-events"))
    ... async def thumbnail(event, ctx): ...  # event["Records"][0]["s3"]["object"]["key"]

    ``delivery="sqs"`` (default): the notifications come through an SQS queue. ``queue``
    names one the bucket already notifies (``configure=True`` makes the router set the
    bucket's notification and the queue's policy anyway); without it the router creates
    ``<router>-<function>-s3`` and configures both. ``delivery="webhook"``: an S3-compatible
    store POSTs ``{"Records": [...]}`` to ``path`` (default ``/s3/<function>``) on the
    router's port with ``Authorization: Bearer <token>``. ``events``, ``prefix`` and
    ``suffix`` filter as S3's notification rules do (on the decoded key).

    ``delivery="eventbridge"``: the bucket sends its events to EventBridge, a rule there
    targets an SQS queue, the router reads it; the function gets the EventBridge event (as a
    Lambda function an EventBridge rule targets does). Without ``queue=`` (or with
    ``configure=True``) the router turns the bucket's EventBridge notifications on and makes
    the rule ``eventrouter-<function>`` on the default bus with the queue as its target.
    """

    model: ClassVar[Model] = "async"
    principal: ClassVar[str | None] = "s3.amazonaws.com"
    batch_size: ClassVar[int] = 1
    named_queue: ClassVar[None] = None
    starter: ClassVar[Starter | None] = FEEDS

    bucket: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""
    delivery: Literal["sqs", "webhook", "eventbridge"] = "sqs"
    queue: str | None = None
    configure: bool = False
    path: str | None = None
    token: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    wait_time_seconds: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not self.bucket:
            raise ConfigError(f"S3 bucket={self.bucket!r} must name a bucket")
        events = (self.events,) if isinstance(self.events, str) else tuple(self.events)
        if not events or not all(isinstance(e, str) and e.startswith("s3:") for e in events):
            raise ConfigError(f"S3 events={self.events!r} must be S3 event names (s3:...)")
        msgspec.structs.force_setattr(self, "events", events)
        if self.delivery not in ("sqs", "webhook", "eventbridge"):
            raise ConfigError(
                f"S3 delivery={self.delivery!r} must be 'sqs', 'webhook' or 'eventbridge'"
            )
        if self.delivery == "webhook" and not self.token:
            raise ConfigError("S3 delivery='webhook' needs token= (the webhook's bearer token)")
        if self.delivery != "webhook" and (self.token or self.path):
            raise ConfigError("S3 token= and path= go with delivery='webhook'")
        if self.path is not None and not self.path.startswith("/"):
            raise ConfigError(f"S3 path={self.path!r} must start with /")

    def endpoint_path(self, function: str) -> str | None:
        """The webhook's path (``None``: delivered through SQS)."""
        if self.delivery != "webhook":
            return None
        return self.path or f"/s3/{function}"

    def trace_attributes(self) -> dict[str, Any]:
        return {"faas.trigger": "datasource", "faas.document.collection": self.bucket}

    def describe(self) -> str:
        return f"s3:{self.bucket} ({self.delivery})"

    def source_arns(self) -> list[str]:
        return [f"arn:aws:s3:::{self.bucket}"]

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> None:
        return None

    def wanted(self, record: dict[str, Any]) -> bool:
        """S3's notification rules: an event name asked for, the key's prefix and suffix."""
        if rules.bucket_of(record) not in ("", self.bucket):
            return False
        if not rules.event_matches(str(record.get("eventName", "")), self.events):
            return False
        key = rules.key_of(record)
        return key.startswith(self.prefix) and key.endswith(self.suffix)

    def lambda_events(self, document: Any) -> list[bytes]:
        """One Lambda event per wanted record of a notification (a test event: none); an
        EventBridge event as it is, if wanted."""
        if rules.is_test_event(document):
            return []
        if self.delivery == "eventbridge":
            if not rules.is_eventbridge_event(document):
                raise FeedError("not an S3 event from EventBridge (source aws.s3)")
            key = rules.eventbridge_key(document)
            wanted = (
                rules.eventbridge_bucket(document) == self.bucket
                and rules.event_matches(rules.eventbridge_name(document), self.events)
                and key.startswith(self.prefix)
                and key.endswith(self.suffix)
            )
            return [_encoder.encode(document)] if wanted else []
        records = rules.records_of(document)
        if not records:
            raise FeedError("not an S3 notification: no Records")
        region = self.region or REGION
        return [
            _encoder.encode({"Records": [rules.lambda_record(record, region)]})
            for record in records
            if self.wanted(record)
        ]

    def feed(self, spec: FunctionSpec, runtime: SourcePort) -> SqsFeed | S3Webhook:
        if self.delivery == "webhook":
            return S3Webhook(self, spec, runtime)
        name = self.queue or queue_name(runtime.router.name, spec.name, "s3")
        queue = Sqs(
            name,
            endpoint_url=self.endpoint_url,
            region=self.region,
            wait_time_seconds=self.wait_time_seconds,
        )

        def convert(body: str) -> list[bytes]:
            try:
                document = _decoder.decode(body)
            except msgspec.DecodeError as exc:
                raise FeedError(f"not JSON: {exc}") from None
            return self.lambda_events(document)

        async def setup() -> None:
            if self.delivery == "eventbridge":
                await configure_eventbridge(self, spec, runtime, queue)
            else:
                await configure_bucket(self, spec, runtime, queue)

        wanted = self.queue is None or self.configure
        return SqsFeed(runtime, spec, queue, convert, setup=setup if wanted else None)


async def notification_configuration(runtime: SourcePort, source: S3) -> dict[str, Any]:
    """The bucket's notification configuration as it is (to change one part and put it back)."""
    client = await runtime.clients.aws("s3", source.region, source.endpoint_url)
    current: dict[str, Any] = await client.get_bucket_notification_configuration(
        Bucket=source.bucket
    )
    current.pop("ResponseMetadata", None)
    return current


async def put_notification_configuration(
    runtime: SourcePort, source: S3, configuration: dict[str, Any]
) -> None:
    client = await runtime.clients.aws("s3", source.region, source.endpoint_url)
    await client.put_bucket_notification_configuration(
        Bucket=source.bucket, NotificationConfiguration=configuration
    )


async def configure_bucket(source: S3, spec: FunctionSpec, runtime: SourcePort, queue: Sqs) -> None:
    """Create the queue, let the bucket send to it, and add (or replace) this function's
    queue configuration in the bucket's notification configuration."""
    bucket_arn = f"arn:aws:s3:::{source.bucket}"
    arn = await ensure_queue(runtime, queue, "s3.amazonaws.com", bucket_arn, "ArnLike")
    current = await notification_configuration(runtime, source)
    ident = f"eventrouter-{spec.name}"
    queues = [q for q in current.get("QueueConfigurations", []) if q.get("Id") != ident]
    rules_: list[dict[str, str]] = []
    if source.prefix:
        rules_.append({"Name": "prefix", "Value": source.prefix})
    if source.suffix:
        rules_.append({"Name": "suffix", "Value": source.suffix})
    mine: dict[str, Any] = {"Id": ident, "QueueArn": arn, "Events": list(source.events)}
    if rules_:
        mine["Filter"] = {"Key": {"FilterRules": rules_}}
    current["QueueConfigurations"] = [*queues, mine]
    await put_notification_configuration(runtime, source, current)
    log.info("bucket notifies the queue", function=spec.name, bucket=source.bucket, queue=arn)


async def configure_eventbridge(
    source: S3, spec: FunctionSpec, runtime: SourcePort, queue: Sqs
) -> None:
    """Turn the bucket's EventBridge notifications on; a rule on the default bus for this
    bucket's events with the queue (which lets the rule send) as its target."""
    events = await runtime.clients.aws("events", source.region, source.endpoint_url)
    rule = f"eventrouter-{spec.name}"[:64]
    pattern = {"source": ["aws.s3"], "detail": {"bucket": {"name": [source.bucket]}}}
    rule_arn = (await events.put_rule(Name=rule, EventPattern=_encoder.encode(pattern).decode()))[
        "RuleArn"
    ]
    arn = await ensure_queue(runtime, queue, "events.amazonaws.com", rule_arn)
    await events.put_targets(Rule=rule, Targets=[{"Id": "eventrouter", "Arn": arn}])
    current = await notification_configuration(runtime, source)
    current["EventBridgeConfiguration"] = {}
    await put_notification_configuration(runtime, source, current)
    log.info("bucket notifies EventBridge", function=spec.name, bucket=source.bucket, rule=rule)


class S3Webhook(Endpoint):
    """The webhook endpoint of one function (``delivery="webhook"``)."""

    def __init__(self, source: S3, spec: FunctionSpec, runtime: SourcePort) -> None:
        super().__init__()
        self.source = source
        self.spec = spec
        self.runtime = runtime

    def describe(self) -> dict[str, Any]:
        return {"path": self.source.endpoint_path(self.spec.name), "bucket": self.source.bucket}

    async def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        name = self.spec.name
        given = headers.get("authorization", "")
        token = given[7:] if given.lower().startswith("bearer ") else given
        assert self.source.token is not None
        if not hmac.compare_digest(token.encode(), self.source.token.encode()):
            self.runtime.metrics.add("InvalidNotifications", name)
            log.warning("s3 webhook refused: bad token", function=name)
            return 403, {"message": "bad token"}
        try:
            events = self.source.lambda_events(_decoder.decode(body))
        except (msgspec.DecodeError, FeedError) as exc:
            self.runtime.metrics.add("InvalidNotifications", name)
            return 400, {"message": f"not an S3 notification: {exc}"}
        ids = [await self.runtime.enqueue_invocation(name, event) for event in events]
        self.runtime.metrics.add("NotificationsReceived", name, len(ids))
        return 200, {"requestIds": ids}
