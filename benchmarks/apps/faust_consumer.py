"""Faust (faust-streaming) consuming the benchmark topic its own way, in a process of its own.

``python -m benchmarks.apps.faust_consumer SERVERS TOPIC TOTAL BATCH``: an agent takes the
records in batches of up to ``BATCH`` (``stream.take``), each value decoded by Faust into a
``faust.Record`` model; offsets are committed by Faust. Prints the records/s from the first
record handled to the last, as one JSON line; the parent then stops the process (Faust
redirects stdout into its log, so the line may carry a log prefix).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

import faust


class Click(faust.Record, serializer="json"):
    user: str
    page: str
    ref: str
    n: int
    at: float


def main() -> None:
    servers, topic_name, total, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{servers}",
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=1.0,
        broker_heartbeat_interval=0.2,
        broker_rebalance_timeout=1.0,
        broker_commit_every=batch,
    )
    topic = app.topic(topic_name, value_type=Click)
    seen = {"count": 0, "first": 0.0}

    @app.agent(topic)
    async def handle(stream: Any) -> None:
        async for clicks in stream.take(batch, within=0.05):
            if seen["count"] == 0:
                seen["first"] = time.perf_counter()
            seen["count"] += len(clicks)
            if seen["count"] >= total:
                rate = total / (time.perf_counter() - seen["first"])
                print(json.dumps({"records_per_s": rate}), flush=True)  # the parent stops us

    worker = faust.Worker(app, loglevel=logging.WARNING, quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
