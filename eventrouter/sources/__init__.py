"""Source adapters: one transport each, none of Lambda's rules.

A source object given to ``on_event`` is a frozen settings Struct following the
:class:`~eventrouter.sources.base.Source` protocol: it names its model, its principal and the
ARNs it invokes with, and a pull source builds its adapter (``KafkaAdapter``,
``SqsAdapter``, the shard readers of ``Kinesis`` and ``DynamoDBStream``), which the engine
hands to the policy of that model. The embedded
:class:`~eventrouter.sources.queue.Queue` has no adapter: the asynchronous policy consumes it
with the function's own queue.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventrouter.sources.dynamodb_streams import DynamoDBRecord, DynamoDBStream
    from eventrouter.sources.http import Http
    from eventrouter.sources.kafka import Kafka, KafkaRecord
    from eventrouter.sources.kinesis import Kinesis, KinesisRecord
    from eventrouter.sources.queue import Queue
    from eventrouter.sources.s3 import S3
    from eventrouter.sources.schedule import Schedule
    from eventrouter.sources.sns import Sns
    from eventrouter.sources.sqs import Sqs, SqsMessage

#: Each source's module, imported when the source is first named: a router that uses SQS
#: does not pay for Kinesis's, S3's... (``eventrouter.sources.base`` imports none).
_MODULES = {
    "DynamoDBRecord": "dynamodb_streams",
    "DynamoDBStream": "dynamodb_streams",
    "Http": "http",
    "Kafka": "kafka",
    "KafkaRecord": "kafka",
    "Kinesis": "kinesis",
    "KinesisRecord": "kinesis",
    "Queue": "queue",
    "S3": "s3",
    "Schedule": "schedule",
    "Sns": "sns",
    "Sqs": "sqs",
    "SqsMessage": "sqs",
}

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _MODULES.get(name)
        if module is None:
            raise AttributeError(f"module 'eventrouter.sources' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"eventrouter.sources.{module}"), name)
        globals()[name] = value
        return value


__all__ = [
    "DynamoDBRecord",
    "DynamoDBStream",
    "Http",
    "Kafka",
    "KafkaRecord",
    "Kinesis",
    "KinesisRecord",
    "Queue",
    "S3",
    "Schedule",
    "Sns",
    "Sqs",
    "SqsMessage",
]
