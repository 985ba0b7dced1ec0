"""AWS destinations through aiobotocore: SQS, SNS, EventBridge, S3 (extra ``aws``).

Credentials and region come from botocore's usual chain (environment, config files);
``region`` and ``endpoint_url`` override them (``endpoint_url`` for LocalStack or moto).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from eventrouter._optional import require
from eventrouter.arns import event_bus_arn, s3_object_arn, sqs_arn
from eventrouter.errors import ConfigError, DestinationError
from eventrouter.keywords import checked
from eventrouter.lineage import produced, sqs_attribute
from eventrouter.observability.tracing import current_xray
from eventrouter.services.clients import sqs_queue_url

if TYPE_CHECKING:
    from eventrouter.contract.spec import Services

_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_.\-]")


class _Aws(msgspec.Struct, frozen=True, kw_only=True):
    region: str | None = None
    endpoint_url: str | None = None

    def check(self, runtime: Services) -> None:
        require("aiobotocore", "aws")

    async def client(self, runtime: Services, service: str) -> Any:
        return await runtime.clients.aws(service, self.region, self.endpoint_url)


class ToSqs(_Aws, frozen=True, kw_only=True, dict=True):
    queue: str

    def describe(self) -> str:
        return f"sqs:{self.queue}"

    def permission(self, key: str) -> tuple[str, str]:
        return "sqs:SendMessage", sqs_arn(self.queue, self.region)

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        sqs = await self.client(runtime, "sqs")
        url = self.__dict__.get("_url")
        if url is None:
            url = self.__dict__["_url"] = await sqs_queue_url(sqs, self.queue)
        message: dict[str, Any] = {"QueueUrl": url, "MessageBody": record.decode()}
        if self.queue.endswith(".fifo"):
            message["MessageGroupId"] = "eventrouter"
            message["MessageDeduplicationId"] = _UNSAFE_KEY.sub("_", key)[:128]
        lineage = produced()
        if lineage:  # a router reading the queue knows how deep the chain is
            message["MessageAttributes"] = sqs_attribute(lineage)
        trace = current_xray()
        if trace is not None:  # the receiver's Lambda (or router) continues the trace
            message["MessageSystemAttributes"] = {
                "AWSTraceHeader": {"DataType": "String", "StringValue": trace}
            }
        await sqs.send_message(**message)


class ToSns(_Aws, frozen=True, kw_only=True):
    topic_arn: str

    def describe(self) -> str:
        return f"sns:{self.topic_arn}"

    def permission(self, key: str) -> tuple[str, str]:
        return "sns:Publish", self.topic_arn

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        sns = await self.client(runtime, "sns")
        await sns.publish(TopicArn=self.topic_arn, Message=record.decode())


class ToEventBridge(_Aws, frozen=True, kw_only=True):
    bus: str
    source: str = "eventrouter"
    detail_type: str = "Lambda Function Invocation Result"

    def describe(self) -> str:
        return f"eventbridge:{self.bus}"

    def permission(self, key: str) -> tuple[str, str]:
        if self.bus.startswith("arn:"):
            return "events:PutEvents", self.bus
        return (
            "events:PutEvents",
            event_bus_arn(self.bus, self.region),
        )

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        events = await self.client(runtime, "events")
        entry = {
            "Source": self.source,
            "DetailType": self.detail_type,
            "Detail": record.decode(),
            "EventBusName": self.bus,
        }
        response = await events.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failed = response["Entries"][0]
            raise DestinationError(
                f"EventBridge refused the event: {failed.get('ErrorCode')}: "
                f"{failed.get('ErrorMessage')}"
            )


class ToS3(_Aws, frozen=True, kw_only=True):
    bucket: str
    prefix: str = ""

    def describe(self) -> str:
        return f"s3:{self.bucket}/{self.prefix}"

    def object_key(self, key: str) -> str:
        # The object key comes from the request id only, never from payload data.
        return f"{self.prefix}{_UNSAFE_KEY.sub('_', key)[:200] or 'record'}.json"

    def permission(self, key: str) -> tuple[str, str]:
        return "s3:PutObject", s3_object_arn(self.bucket, self.object_key(key))

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        s3 = await self.client(runtime, "s3")
        await s3.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=record,
            ContentType="application/json",
        )


def _nonempty(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{field}={value!r} must be a non-empty string")


@checked
def to_sqs(queue: str, *, region: str | None = None, endpoint_url: str | None = None) -> ToSqs:
    """Send records to an SQS queue (name or URL); FIFO queues get the request id as
    deduplication id."""
    _nonempty("queue", queue)
    return ToSqs(queue=queue, region=region, endpoint_url=endpoint_url)


@checked
def to_sns(topic_arn: str, *, region: str | None = None, endpoint_url: str | None = None) -> ToSns:
    """Publish records to an SNS topic."""
    _nonempty("topic_arn", topic_arn)
    return ToSns(topic_arn=topic_arn, region=region, endpoint_url=endpoint_url)


@checked
def to_eventbridge(
    bus: str = "default",
    *,
    source: str = "eventrouter",
    detail_type: str = "Lambda Function Invocation Result",
    region: str | None = None,
    endpoint_url: str | None = None,
) -> ToEventBridge:
    """Put records on an EventBridge bus as the event's ``detail``."""
    _nonempty("bus", bus)
    return ToEventBridge(
        bus=bus, source=source, detail_type=detail_type, region=region, endpoint_url=endpoint_url
    )


@checked
def to_s3(
    bucket: str, prefix: str = "", *, region: str | None = None, endpoint_url: str | None = None
) -> ToS3:
    """Write each record as ``s3://bucket/<prefix><request id>.json`` (for failures, as Lambda)."""
    _nonempty("bucket", bucket)
    return ToS3(bucket=bucket, prefix=prefix, region=region, endpoint_url=endpoint_url)
