"""The router's shared connections to other services: aiobotocore clients, Kafka producers.

Created on first use (so a router without AWS or Kafka never imports their libraries) and
closed when the engine stops.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog

from eventrouter._optional import require

log = structlog.get_logger("eventrouter")


class Clients:
    """One aiobotocore client per (service, region, endpoint), one producer per cluster."""

    def __init__(self) -> None:
        self._aws: dict[tuple[str, str | None, str | None], Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._producers: dict[str, Any] = {}

    async def aws(
        self, service: str, region: str | None = None, endpoint_url: str | None = None
    ) -> Any:
        """A shared aiobotocore client (credentials and region by botocore's usual chain)."""
        key = (service, region, endpoint_url)
        client = self._aws.get(key)
        if client is None:
            session = require("aiobotocore.session", "aws").get_session()
            client = await self._stack.enter_async_context(
                session.create_client(service, region_name=region, endpoint_url=endpoint_url)
            )
            self._aws[key] = client
        return client

    async def kafka_producer(self, bootstrap_servers: str) -> Any:
        """The shared aiokafka producer for ``bootstrap_servers`` (started lazily)."""
        producer = self._producers.get(bootstrap_servers)
        if producer is None:
            aiokafka = require("aiokafka", "kafka")
            producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap_servers)
            self._producers[bootstrap_servers] = producer
            await producer.start()
        return producer

    async def close(self) -> None:
        """Close every client; producers flush what is pending first. Failures are logged."""
        try:
            await self._stack.aclose()
        except Exception as exc:  # noqa: BLE001 - logged, shutdown goes on
            log.warning("aws client close failed", error=repr(exc))
        for producer in self._producers.values():
            try:
                await producer.stop()
            except Exception as exc:  # noqa: BLE001 - logged, shutdown goes on
                log.warning("kafka producer stop failed", error=repr(exc))


async def sqs_queue_url(client: Any, queue: str) -> str:
    """The URL of an SQS queue given by URL or by name (asked of SQS)."""
    if queue.startswith(("https://", "http://")):
        return queue
    url: str = (await client.get_queue_url(QueueName=queue))["QueueUrl"]
    return url


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for any other exception)."""
    response = getattr(exc, "response", None) or {}
    code: str = response.get("Error", {}).get("Code", "")
    return code
