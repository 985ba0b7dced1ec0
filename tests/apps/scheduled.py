"""An app for the schedule process tests: each fire's time and request id, one line each."""

from __future__ import annotations

import os
from typing import Any

from eventrouter import Context, Router, Schedule

router = Router("scheduled")
OUT = os.environ.get("SCHEDULED_OUT", "fires.log")
CATCH_UP: Any = os.environ.get("SCHEDULED_CATCH_UP", "latest")


@router.on_event(Schedule("rate(1 second)", catch_up=CATCH_UP))
def tick(event: dict[str, Any], ctx: Context) -> None:
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{event['time']} {ctx.aws_request_id}\n".encode())
    finally:
        os.close(fd)
