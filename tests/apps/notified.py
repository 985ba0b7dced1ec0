"""An app for the notification process tests: an SNS topic through an SQS queue (both from
the environment); each message is written as a line; ``NOTIFIED_HANG=1`` makes the handler
hang instead (a router killed while the event is stored but not yet handled)."""

from __future__ import annotations

import os
from typing import Any

import anyio

from eventrouter import Router, Sns

router = Router("notified")
OUT = os.environ.get("NOTIFIED_OUT", "notified.log")


@router.on_event(
    Sns(
        os.environ.get("NOTIFIED_TOPIC", "arn:aws:sns:us-east-1:123456789012:orders"),
        queue=os.environ.get("NOTIFIED_QUEUE"),
        endpoint_url=os.environ.get("NOTIFIED_ENDPOINT"),
        wait_time_seconds=1,
    )
)
async def on_order(event: dict[str, Any]) -> None:
    if os.environ.get("NOTIFIED_HANG") == "1":
        await anyio.sleep(3600)
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (event["Records"][0]["Sns"]["Message"] + "\n").encode())
    finally:
        os.close(fd)
