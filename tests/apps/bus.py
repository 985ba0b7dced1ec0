"""An app for the event-bus process tests: an archived bus, three rules, one line per event."""

from __future__ import annotations

import os
from typing import Any

from eventrouter import Context, EventBus, EventRule, Router

router = Router("bus", buses=[EventBus("orders", archive_days=7)])
OUT = os.environ.get("BUS_OUT", "bus.log")
PLACED = {"source": ["shop"], "detail-type": ["order.placed"]}


def _append(line: str) -> None:
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
