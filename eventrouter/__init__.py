"""eventrouter: AWS Lambda's event model for your own machines.

>>> from eventrouter import Router, to_directory
>>> router = Router("shop")
>>> @router.on_event(None, timeout=3, on_failure=to_directory("failed"))
... async def charge(order: dict, ctx) -> dict: ...
"""

from eventrouter.bus.rules import EventBus, EventRule
from eventrouter.context import Context
from eventrouter.destinations import (
    to_bus,
    to_directory,
    to_eventbridge,
    to_function,
    to_kafka,
    to_queue,
    to_s3,
    to_sns,
    to_sqs,
)
from eventrouter.errors import (
    AccessDenied,
    ConfigError,
    DestinationError,
    EventRouterError,
    FunctionError,
    FunctionNotFound,
    FunctionTimeout,
    InvalidRequestContent,
    InvokeError,
    PayloadTooLarge,
    RecursiveInvocation,
    SourceError,
    StateDirInUse,
    Throttled,
)
from eventrouter.events import HttpEvent
from eventrouter.http import HttpRequest, Response
from eventrouter.router import Router, default_router, on_event
from eventrouter.runtime.engine import Engine
from eventrouter.security.permissions import Permission
from eventrouter.sources import (
    S3,
    DynamoDBRecord,
    DynamoDBStream,
    Http,
    Kafka,
    KafkaRecord,
    Kinesis,
    KinesisRecord,
    Queue,
    Schedule,
    Sns,
    Sqs,
    SqsMessage,
)
from eventrouter.streaming import ServerSentEvent, StreamingResponse, sse

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "ConfigError",
    "Context",
    "DestinationError",
    "DynamoDBRecord",
    "DynamoDBStream",
    "Engine",
    "EventBus",
    "EventRouterError",
    "EventRule",
    "FunctionError",
    "FunctionNotFound",
    "FunctionTimeout",
    "Http",
    "HttpEvent",
    "HttpRequest",
    "InvalidRequestContent",
    "InvokeError",
    "Kafka",
    "KafkaRecord",
    "Kinesis",
    "KinesisRecord",
    "PayloadTooLarge",
    "Permission",
    "Queue",
    "RecursiveInvocation",
    "Response",
    "Router",
    "S3",
    "Schedule",
    "ServerSentEvent",
    "Sns",
    "SourceError",
    "Sqs",
    "SqsMessage",
    "StateDirInUse",
    "StreamingResponse",
    "Throttled",
    "default_router",
    "on_event",
    "sse",
    "to_bus",
    "to_directory",
    "to_eventbridge",
    "to_function",
    "to_kafka",
    "to_queue",
    "to_s3",
    "to_sns",
    "to_sqs",
]
