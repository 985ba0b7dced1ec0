"""A no-op route and a no-op asynchronous function, for ``run --workers`` (the workers
benchmark)."""

from typing import Any

from eventrouter import Http, Router

router = Router("bench-workers")


@router.on_event(Http("GET /noop"))
async def noop(event: Any) -> dict[str, bool]:
    return {"ok": True}


@router.on_event(None)
async def work(event: Any) -> None:
    return None
