"""Destinations: where the invocation record of an asynchronous invocation goes.

Each is a small frozen Struct with one job: ``send(runtime, record, key)``. ``key`` is a
stable id of the event (its request id), so a record delivered twice lands once where the
target can tell (a file of that name).
"""

from __future__ import annotations

from eventrouter.contract.spec import Destination
from eventrouter.destinations.aws import (
    ToEventBridge,
    ToS3,
    ToSns,
    ToSqs,
    to_eventbridge,
    to_s3,
    to_sns,
    to_sqs,
)
from eventrouter.destinations.bus import ToBus, to_bus
from eventrouter.destinations.directory import ToDirectory, to_directory
from eventrouter.destinations.function import ToFunction, to_function
from eventrouter.destinations.kafka import ToKafka, to_kafka
from eventrouter.destinations.queue import ToQueue, to_queue

__all__ = [
    "Destination",
    "ToBus",
    "ToDirectory",
    "ToEventBridge",
    "ToFunction",
    "ToKafka",
    "ToQueue",
    "ToS3",
    "ToSns",
    "ToSqs",
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
