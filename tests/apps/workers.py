"""An app for ``--workers``: a route that tells which process answered, and a function that
writes each event's number to a file of its process (``WORKERS_OUT``)."""

import os
import time
from typing import Any

from eventrouter import Http, Router

router = Router("workers")
OUT = os.environ.get("WORKERS_OUT", ".")


@router.on_event(Http("GET /who"))
async def who(event: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "worker": os.environ.get("EVENTROUTER_WORKER")}


@router.on_event(None, timeout=10)
def record(event: dict[str, Any]) -> None:
    time.sleep(event.get("sleep", 0))
    with open(os.path.join(OUT, f"done-{os.getpid()}.log"), "a") as out:
        out.write(f"{event['n']}\n")


@router.on_event(None, reserved_concurrency=3, timeout=10)
def limited(event: dict[str, Any]) -> None:
    """Records when each invocation ran (``spans-<pid>.log``: start and end, epoch seconds)."""
    started = time.time()
    time.sleep(event.get("sleep", 0.05))
    with open(os.path.join(OUT, f"spans-{os.getpid()}.log"), "a") as out:
        out.write(f"{started} {time.time()}\n")
