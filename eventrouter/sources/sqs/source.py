"""``Sqs``: an SQS queue as the source of a function, and the aiobotocore adapter.

The adapter knows the transport only (connect, receive, delete, Lambda's SQS event); the
queue model's rules live in :mod:`eventrouter.runtime.policies.queue_poll`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

import eventrouter.mapping_fields as mapping_fields
from eventrouter.arns import region_of, sqs_arn
from eventrouter.config import check_int, check_range
from eventrouter.contract.spec import Model, QueueInfo, SourceBase, messaging
from eventrouter.errors import ConfigError
from eventrouter.filters import Filters, compiled, maybe_json
from eventrouter.keywords import CheckedStructMeta
from eventrouter.lineage import CARRIER, from_sqs
from eventrouter.observability.tracing import sqs_trace
from eventrouter.services.clients import Clients, sqs_queue_url

if TYPE_CHECKING:
    from eventrouter.contract.spec import FunctionSpec, SourcePort


class Sqs(SourceBase, frozen=True, dict=True, metaclass=CheckedStructMeta):
    """Poll an SQS queue (name or URL) with scaling pollers.

    >>> @router.on_event(Sqs("orders", batch_size=10, report_batch_item_failures=True),
    ...                  timeout=30)
    ... async def handle(batch: list[Order], ctx): ...

    Forms: ``list[T]`` gets the batch (``ctx.records``: ``SqsMessage``); ``T`` is invoked once
    per message, concurrently within the batch (in order per ``MessageGroupId`` for FIFO
    queues); ``dict`` / unannotated gets Lambda's ``{"Records": [...]}`` event. Scaling:
    ``min_pollers`` to start, up to ``scale_up_per_minute`` more a minute while receives come
    back full, fewer when they come back empty, never more than ``max_concurrency`` or the
    function's ``reserved_concurrency``; ``scale_tick`` is how often that is decided.
    """

    model: ClassVar[Model] = "queue"
    principal: ClassVar[str | None] = "sqs.amazonaws.com"
    named_queue: ClassVar[None] = None

    queue: str
    batch_size: int = 10
    batching_window: float = 0.0
    max_concurrency: int = 1000
    report_batch_item_failures: bool = False
    endpoint_url: str | None = None
    region: str | None = None
    wait_time_seconds: int = 20
    filters: tuple[dict[str, Any], ...] = ()
    min_pollers: int = 5
    scale_up_per_minute: int = 300
    scale_tick: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.queue, str) or not self.queue:
            raise ConfigError(f"Sqs queue={self.queue!r} must be a queue name or URL")
        msgspec.structs.force_setattr(self, "filters", tuple(self.filters))
        for field, low, high in (
            ("batch_size", 1, 10_000),
            ("max_concurrency", 2, 1000),
            ("wait_time_seconds", 0, 20),
            ("min_pollers", 1, 1000),
            ("scale_up_per_minute", 1, 10_000),
        ):
            check_int(field, getattr(self, field), low, high)
        check_range("batching_window", self.batching_window, 0, 300, unit="seconds")
        check_range("scale_tick", self.scale_tick, 0.01, 3600, low_open=False, unit="seconds")
        if self.min_pollers > self.max_concurrency:
            raise ConfigError(
                f"min_pollers={self.min_pollers} is more than "
                f"max_concurrency={self.max_concurrency}"
            )
        self.compiled_filters  # noqa: B018 - validates the patterns now

    @property
    def compiled_filters(self) -> Filters:
        return compiled(self)

    @property
    def name(self) -> str:
        return self.queue.rstrip("/").rsplit("/", 1)[-1]

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")

    def trace_attributes(self) -> dict[str, Any]:
        return messaging("aws_sqs", self.name)

    def describe(self) -> str:
        return f"sqs:{self.name} batch={self.batch_size}"

    def mapping_document(self) -> dict[str, Any]:
        # The queue's ARN as the router guesses it; the mapping reports SQS's once known (a
        # queue named by name or URL may live in another account than the router's).
        return {
            "EventSourceArn": sqs_arn(self.queue, self.region),
            "ScalingConfig": {"MaximumConcurrency": self.max_concurrency},
            **mapping_fields.batching(self.batching_window),
            **mapping_fields.responses(self.report_batch_item_failures, self.filters),
        }

    def source_arns(self) -> list[str]:
        return []  # the queue's ARN is asked of SQS when the poller connects

    def adapter(self, spec: FunctionSpec, runtime: SourcePort) -> SqsAdapter:
        return SqsAdapter(self, runtime.clients)


class SqsMessage(msgspec.Struct, frozen=True):
    """One message's metadata: ``ctx.records[i]``."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    message_attributes: dict[str, Any]
    group_id: str | None


def message_of(raw: dict[str, Any]) -> SqsMessage:
    attributes = raw.get("Attributes") or {}
    return SqsMessage(
        raw["MessageId"],
        raw["ReceiptHandle"],
        raw.get("Body", ""),
        attributes,
        raw.get("MessageAttributes") or {},
        attributes.get("MessageGroupId"),
    )


def lambda_event(raws: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event: ``{"Records": [...]}``."""
    records = []
    for raw in raws:
        body = raw.get("Body", "")
        records.append(
            {
                "messageId": raw["MessageId"],
                "receiptHandle": raw["ReceiptHandle"],
                "body": body,
                "attributes": raw.get("Attributes") or {},
                "messageAttributes": _lambda_attributes(raw.get("MessageAttributes") or {}),
                "md5OfBody": raw.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def _lambda_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as Lambda writes them: binary values as base64 text, and only the
    value field the attribute's data type has."""
    out = {}
    for name, value in attributes.items():
        attribute: dict[str, Any] = {}
        if value.get("StringValue") is not None:
            attribute["stringValue"] = value["StringValue"]
        if value.get("BinaryValue") is not None:
            attribute["binaryValue"] = _base64(value["BinaryValue"])
        attribute["stringListValues"] = list(value.get("StringListValues") or [])
        attribute["binaryListValues"] = [_base64(v) for v in value.get("BinaryListValues") or []]
        attribute["dataType"] = value.get("DataType")
        out[name] = attribute
    return out


def _base64(value: bytes | str) -> str:
    return value if isinstance(value, str) else base64.b64encode(value).decode()


class SqsAdapter:
    """aiobotocore's SQS client, reduced to what the queue policy needs
    (:class:`eventrouter.contract.adapters.QueueAdapter`)."""

    def __init__(self, source: Sqs, clients: Clients) -> None:
        self.source = source
        self.fifo = source.fifo
        self.label = f"Sqs({source.queue!r})"
        self._clients = clients
        self._client: Any = None
        self.url = ""
        self.arn = ""
        self.region = ""

    async def connect(self) -> QueueInfo:
        source = self.source
        self._client = await self._clients.aws("sqs", source.region, source.endpoint_url)
        self.url = await sqs_queue_url(self._client, source.queue)
        attributes = (
            await self._client.get_queue_attributes(
                QueueUrl=self.url, AttributeNames=["QueueArn", "VisibilityTimeout"]
            )
        )["Attributes"]
        self.arn = attributes.get("QueueArn", "")
        self.region = region_of(self.arn, source.region or "")
        visibility = int(attributes.get("VisibilityTimeout", 30))
        return QueueInfo(self.url, self.arn, visibility)

    async def receive(
        self, max_messages: int, wait_seconds: int, attributes: list[str]
    ) -> list[dict[str, Any]]:
        response = await self._client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=attributes,
            # The lineage of a message another invocation sent (recursive loop detection).
            MessageAttributeNames=attributes if "All" in attributes else [CARRIER],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    async def delete(self, messages: list[dict[str, Any]]) -> list[str]:
        failed: list[str] = []
        for i in range(0, len(messages), 10):
            chunk = messages[i : i + 10]
            response = await self._client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(chunk)
                ],
            )
            failed.extend(chunk[int(f["Id"])]["MessageId"] for f in response.get("Failed") or ())
        return failed

    def lambda_event(self, raws: list[dict[str, Any]]) -> dict[str, Any]:
        return lambda_event(raws, self.arn, self.region)

    def value_of(self, raw: dict[str, Any]) -> str:
        body: str = raw.get("Body", "")
        return body

    def record(self, raw: dict[str, Any], value: Any = None) -> SqsMessage:
        return message_of(raw)

    def item_identifier(self, raw: dict[str, Any]) -> str:
        message_id: str = raw["MessageId"]
        return message_id

    def identifier_key(self, ident: Any) -> Hashable:
        """An ``itemIdentifier`` is the message id as SQS gave it."""
        return ident if isinstance(ident, str) else None

    def trace_of(self, raw: dict[str, Any]) -> str | None:
        """SQS's ``AWSTraceHeader`` as a ``traceparent`` (while tracing)."""
        return sqs_trace(raw)

    def lineage_of(self, raws: list[dict[str, Any]]) -> int:
        return max(from_sqs(r.get("MessageAttributes")) for r in raws)

    def attempt_of(self, raws: list[dict[str, Any]]) -> int:
        return max(int(r.get("Attributes", {}).get("ApproximateReceiveCount", 1)) for r in raws)

    def group_of(self, raw: dict[str, Any]) -> str:
        group: str = raw.get("Attributes", {}).get("MessageGroupId", "")
        return group

    def filter_view(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Filter patterns see ``body`` (JSON if it parses) and the attributes."""
        return {"body": maybe_json(raw.get("Body", "")), "attributes": raw.get("Attributes") or {}}
