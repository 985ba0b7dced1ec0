"""eventrouter: AWS Lambda's event model for your own machines.

>>> from eventrouter import Router, to_directory
>>> router = Router("shop")
>>> @router.on_event(None, timeout=3, on_failure=to_directory("failed"))
... async def charge(order: dict, ctx) -> dict: ...
"""

import sys
from typing import TYPE_CHECKING

# structlog imports ``rich`` when it is installed, for pretty console tracebacks: ~60 ms of
# every start (routers, process environments, the CLI). eventrouter formats its own; a
# program that imported structlog before eventrouter keeps what it chose.
if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]

from eventrouter.compiled import guard
from eventrouter.lazy import lazy_exports

guard()  # before any compiled module is imported: stale or unwanted ones run from source

if TYPE_CHECKING:  # the names as type checkers and editors see them
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
    from eventrouter.sources.bus.rules import EventBus, EventRule
    from eventrouter.streaming import ServerSentEvent, StreamingResponse, sse

#: Each public name and the module it lives in: imported on first use (PEP 562), so that a
#: process environment, which imports ``eventrouter.runtime.environments.worker``, pays only
#: for what it uses.
_EXPORTS = {
    "AccessDenied": "eventrouter.errors",
    "ConfigError": "eventrouter.errors",
    "Context": "eventrouter.context",
    "DestinationError": "eventrouter.errors",
    "DynamoDBRecord": "eventrouter.sources",
    "DynamoDBStream": "eventrouter.sources",
    "Engine": "eventrouter.runtime.engine",
    "EventBus": "eventrouter.sources.bus.rules",
    "EventRouterError": "eventrouter.errors",
    "EventRule": "eventrouter.sources.bus.rules",
    "FunctionError": "eventrouter.errors",
    "FunctionNotFound": "eventrouter.errors",
    "FunctionTimeout": "eventrouter.errors",
    "Http": "eventrouter.sources",
    "HttpEvent": "eventrouter.events",
    "HttpRequest": "eventrouter.http",
    "InvalidRequestContent": "eventrouter.errors",
    "InvokeError": "eventrouter.errors",
    "Kafka": "eventrouter.sources",
    "KafkaRecord": "eventrouter.sources",
    "Kinesis": "eventrouter.sources",
    "KinesisRecord": "eventrouter.sources",
    "PayloadTooLarge": "eventrouter.errors",
    "Permission": "eventrouter.security.permissions",
    "Queue": "eventrouter.sources",
    "RecursiveInvocation": "eventrouter.errors",
    "Response": "eventrouter.http",
    "Router": "eventrouter.router",
    "S3": "eventrouter.sources",
    "Schedule": "eventrouter.sources",
    "ServerSentEvent": "eventrouter.streaming",
    "Sns": "eventrouter.sources",
    "SourceError": "eventrouter.errors",
    "Sqs": "eventrouter.sources",
    "SqsMessage": "eventrouter.sources",
    "StateDirInUse": "eventrouter.errors",
    "StreamingResponse": "eventrouter.streaming",
    "Throttled": "eventrouter.errors",
    "default_router": "eventrouter.router",
    "on_event": "eventrouter.router",
    "sse": "eventrouter.streaming",
    "to_bus": "eventrouter.destinations",
    "to_directory": "eventrouter.destinations",
    "to_eventbridge": "eventrouter.destinations",
    "to_function": "eventrouter.destinations",
    "to_kafka": "eventrouter.destinations",
    "to_queue": "eventrouter.destinations",
    "to_s3": "eventrouter.destinations",
    "to_sns": "eventrouter.destinations",
    "to_sqs": "eventrouter.destinations",
}


if not TYPE_CHECKING:
    __getattr__ = lazy_exports("eventrouter", globals(), _EXPORTS)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


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
