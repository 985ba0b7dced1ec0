"""Source adapters: one transport each, none of Lambda's rules.

A source object given to ``on_event`` is a frozen settings Struct; the engine turns it into a
running adapter. In this version the embedded :class:`~eventrouter.sources.queue.Queue` is
consumed by the asynchronous policy (`eventrouter.runtime.asynchronous`).
"""

from eventrouter.sources.http import Http
from eventrouter.sources.kafka import Kafka, KafkaRecord
from eventrouter.sources.queue import Queue
from eventrouter.sources.sqs import Sqs, SqsMessage

__all__ = ["Http", "Kafka", "KafkaRecord", "Queue", "Sqs", "SqsMessage"]
