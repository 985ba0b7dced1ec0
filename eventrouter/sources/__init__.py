"""Source adapters: one transport each, none of Lambda's rules.

A source object given to ``on_event`` is a frozen settings Struct following the
:class:`~eventrouter.contract.spec.Source` protocol: it names its model, its principal and the
ARNs it invokes with, and a pull source builds its adapter (``KafkaAdapter``,
``SqsAdapter``, the shard readers of ``Kinesis`` and ``DynamoDBStream``), which the engine
hands to the policy of that model. The embedded
:class:`~eventrouter.sources.queue.source.Queue` has no adapter: the asynchronous policy consumes it
with the function's own queue.
"""

from typing import TYPE_CHECKING

from eventrouter.lazy import lazy_exports

if TYPE_CHECKING:
    from eventrouter.sources.dynamodb_streams.source import DynamoDBRecord, DynamoDBStream
    from eventrouter.sources.http.source import Http
    from eventrouter.sources.kafka.source import Kafka, KafkaRecord
    from eventrouter.sources.kinesis.source import Kinesis, KinesisRecord
    from eventrouter.sources.queue.source import Queue
    from eventrouter.sources.s3.source import S3
    from eventrouter.sources.schedule.source import Schedule
    from eventrouter.sources.sns.source import Sns
    from eventrouter.sources.sqs.source import Sqs, SqsMessage

#: Each source's module, imported when the source is first named: a router that uses SQS
#: does not pay for Kinesis's, S3's... (``eventrouter.contract.spec`` imports none).
_MODULES = {
    name: f"eventrouter.sources.{module}"
    for module, names in {
        "dynamodb_streams": ("DynamoDBRecord", "DynamoDBStream"),
        "http": ("Http",),
        "kafka": ("Kafka", "KafkaRecord"),
        "kinesis": ("Kinesis", "KinesisRecord"),
        "queue": ("Queue",),
        "s3": ("S3",),
        "schedule": ("Schedule",),
        "sns": ("Sns",),
        "sqs": ("Sqs", "SqsMessage"),
    }.items()
    for name in names
}

if not TYPE_CHECKING:
    __getattr__ = lazy_exports("eventrouter.sources", globals(), _MODULES)

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
