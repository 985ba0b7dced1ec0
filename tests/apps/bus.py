"""An app for the event-bus process tests: an archived bus, three rules, one line per event."""

from __future__ import annotations

import os
import time
from typing import Any

from eventrouter import Context, EventBus, EventRule, Router

router = Router("bus", buses=[EventBus("orders", archive_days=7)])
OUT = os.environ.get("BUS_OUT", "bus.log")
#: While set, handlers wait for this file to exist before writing: a router killed before it
#: exists has run none of its events (the kill -9 test), however fast the machine.
GATE = os.environ.get("BUS_GATE")
PLACED = {"source": ["shop"], "detail-type": ["order.placed"]}


def _append(line: str) -> None:
    while GATE is not None and not os.path.exists(GATE):
        time.sleep(0.01)
    fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@router.on_event(EventRule(bus="orders", pattern=PLACED))
def reserve_stock(event: dict[str, Any], ctx: Context) -> None:
    _append(f"reserve_stock {event['detail']['order']} {event.get('replay-name', '-')}")


@router.on_event(EventRule(bus="orders", pattern=PLACED, input_path="$.detail"))
def bill(detail: dict[str, Any], ctx: Context) -> None:
    _append(f"bill {detail['order']} -")


@router.on_event(
    EventRule(
        bus="orders", pattern={"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}}
    )
)
def review(event: dict[str, Any], ctx: Context) -> None:
    _append(f"review {event['detail']['order']} {event.get('replay-name', '-')}")
