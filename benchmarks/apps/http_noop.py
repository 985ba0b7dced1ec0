"""eventrouter with a no-op route (and the same function behind the Invoke API)."""

from typing import Any

from eventrouter import Http, Router

router = Router("bench-http")


@router.on_event(Http("GET /noop"))
async def noop(event: Any) -> dict[str, bool]:
    return {"ok": True}
