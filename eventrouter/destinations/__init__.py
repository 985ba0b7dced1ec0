"""Destinations: where the invocation record of an asynchronous invocation goes.

Each is a small frozen Struct with one job: ``send(runtime, record, key)``. ``key`` is a
stable id of the event (its request id), so a record delivered twice lands once where the
target can tell (a file of that name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

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

if TYPE_CHECKING:
    from eventrouter.runtime.interface import Runtime


class Destination(Protocol):
    """What ``on_success`` / ``on_failure`` accept."""

    def describe(self) -> str: ...

    def permission(self, key: str) -> tuple[str, str]:
        """The action and resource ARN a role must allow for the record of event ``key``."""
        ...

    def check(self, runtime: Runtime) -> None:
        """Raise ``ConfigError`` at start-up if the destination cannot work."""

    async def send(self, runtime: Runtime, record: bytes, key: str) -> None: ...


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
