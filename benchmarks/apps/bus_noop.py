"""eventrouter with a no-op rule target on bus ``bench`` and the same no-op behind the
Invoke API (``Event``), for the PutEvents benchmark."""

from typing import Any

from eventrouter import EventBus, EventRule, Http, Router

router = Router("bench-bus", buses=[EventBus("bench")])


@router.on_event(EventRule(bus="bench", pattern={"source": ["bench"]}))
async def target(event: Any) -> None:
    return None


@router.on_event()
async def noop(event: Any) -> None:
    return None


@router.on_event(Http("GET /noop"))
async def ready(event: Any) -> dict[str, bool]:
    return {"ok": True}
