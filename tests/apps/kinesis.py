"""An app for the Kinesis process tests: one Kinesis source from the environment; each record
it processes is written as a line ``<shard> <sequence> <n> <pid>``."""

from __future__ import annotations

import os
import time

import msgspec

from eventrouter import Context, Kinesis, Router

router = Router("kinesis", lease_table=os.environ.get("STREAMS_LEASE_TABLE") or None)
OUT = os.environ.get("STREAMS_OUT", "records.log")
DELAY = float(os.environ.get("STREAMS_DELAY", "0"))


class Click(msgspec.Struct):
    n: int


@router.on_event(
    Kinesis(
        os.environ.get("STREAMS_STREAM", "clicks"),
        endpoint_url=os.environ.get("STREAMS_ENDPOINT"),
        batch_size=5,
        poll_interval=0.05,
        discovery_interval=0.5,
        lease_duration=float(os.environ.get("STREAMS_LEASE_DURATION", "3")),
    )
)
def count(batch: list[Click], ctx: Context) -> None:
    time.sleep(DELAY)
    lines = "".join(
        f"{r.shard_id} {r.sequence_number} {c.n} {os.getpid()}\n"
        for r, c in zip(ctx.records, batch, strict=True)
    )
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)
