"""An app whose workers (under ``run --workers``) die half a second after they start: the
supervisor's crash-loop test."""

import os
import threading
from typing import Any

from eventrouter import Router

router = Router("dying")

if os.environ.get("EVENTROUTER_WORKER") is not None:
    threading.Timer(0.5, os._exit, (3,)).start()


@router.on_event(None)
async def noop(event: Any) -> None:
    return None
