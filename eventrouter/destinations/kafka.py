"""``to_kafka``: records (and ``ctx.send`` payloads) to a Kafka topic, one shared producer."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import msgspec

from eventrouter._optional import require
from eventrouter.arns import kafka_topic_arn
from eventrouter.errors import ConfigError
from eventrouter.keywords import checked
from eventrouter.lineage import CARRIER, produced
from eventrouter.observability.tracing import current_trace

if TYPE_CHECKING:
    from eventrouter.contract.spec import Services


class ToKafka(msgspec.Struct, frozen=True):
    topic: str
    key: str | None = None
    bootstrap_servers: str | None = None

    def describe(self) -> str:
        return f"kafka:{self.topic}"

    def permission(self, key: str) -> tuple[str, str]:
        return "kafka:Produce", kafka_topic_arn(self.topic)

    def servers(self) -> str:
        servers = self.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not servers:
            raise ConfigError(
                f"destination {self.describe()}: no bootstrap_servers and "
                "KAFKA_BOOTSTRAP_SERVERS is not set"
            )
        return servers

    def check(self, runtime: Services) -> None:
        require("aiokafka", "kafka")
        self.servers()

    async def send(self, runtime: Services, record: bytes, key: str) -> None:
        producer = await runtime.clients.kafka_producer(self.servers())
        trace = current_trace()
        headers = [("traceparent", trace.encode())] if trace is not None else []
        lineage = produced()
        if lineage:  # a router reading the topic knows how deep the chain is
            headers.append((CARRIER, str(lineage).encode()))
        await producer.send_and_wait(
            self.topic, record, key=(self.key or key).encode(), headers=headers or None
        )


@checked
def to_kafka(
    topic: str, *, key: str | None = None, bootstrap_servers: str | None = None
) -> ToKafka:
    """Send records to ``topic`` through the router's shared aiokafka producer.

    The record key is ``key`` if given, else the event's request id. ``bootstrap_servers``
    defaults to ``KAFKA_BOOTSTRAP_SERVERS``.
    """
    if not isinstance(topic, str) or not topic:
        raise ConfigError(f"to_kafka topic={topic!r} must be a topic name")
    return ToKafka(topic, key, bootstrap_servers)
