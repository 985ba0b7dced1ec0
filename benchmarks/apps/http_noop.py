"""eventrouter with a no-op route (and the same function behind the Invoke API); ``POST
/noop`` decodes a JSON body first (the body-size rows), as the bare ASGI app does."""

from typing import Any

from eventrouter import Http, Router

router = Router("bench-http")


@router.on_event(Http("GET /noop"))
async def noop(event: Any) -> dict[str, bool]:
    return {"ok": True}


@router.on_event(Http("POST /noop"))
async def ingest(payload: dict[str, Any]) -> dict[str, bool]:
    return {"ok": True}
