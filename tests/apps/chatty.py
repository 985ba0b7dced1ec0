"""Functions that print and log, inline and in process environments (issue 14, item 3)."""

from __future__ import annotations

import logging
import sys
from typing import Any

from eventrouter import Router

router = Router("chatty")
logger = logging.getLogger("chatty")
logger.setLevel(logging.INFO)


def talk(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    print(f"hello {event.get('who', 'nobody')}")
    print("no newline yet", end="")
    print(" ... now", file=sys.stderr)
    logger.info("stdlib says %s", "hi")
    ctx.log.info("structured", n=3)
    if event.get("fail"):
        raise ValueError("it went wrong")
    return {"ok": True}


@router.on_event(None)
def inline(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return talk(event, ctx)


@router.on_event(None, log_format="JSON")
async def inline_json(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return talk(event, ctx)


@router.on_event(None, isolation="process")
def isolated(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return talk(event, ctx)
