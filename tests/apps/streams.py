"""An app for the Kafka process tests: writes ``partition:value`` of every record to a file."""

from __future__ import annotations

import os
from typing import Any

import anyio

from eventrouter import Context, Kafka, Router
from tests.kafka_broker import FAST_GROUP

router = Router("streams")
OUT = os.environ.get("DURABLE_OUT", "processed.log")


@router.on_event(
    Kafka(
        os.environ.get("KAFKA_TOPIC", "clicks"),
        group=os.environ.get("KAFKA_GROUP", "streams"),
        batch_size=20,
        batching_window=0,
        consumer_options=FAST_GROUP,
    ),
    timeout=30,
)
async def record(batch: list[Any], ctx: Context) -> None:
    await anyio.sleep(0.005)
    lines = "".join(
        f"{os.getpid()}:{r.partition}:{v['n']}\n" for r, v in zip(ctx.records, batch, strict=True)
    )
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)
