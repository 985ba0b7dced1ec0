"""eventrouter streaming 10 MB in 1 MB pieces (Lambda's bandwidth cap lifted: the figure is
the server's, not the cap's)."""

from collections.abc import AsyncIterator
from typing import Any

from eventrouter import Http, Router

router = Router("bench-stream", stream_bandwidth_cap=False)
PIECE = b"x" * (1024 * 1024)
PIECES = 10


@router.on_event(Http("GET /stream"), timeout=60)
async def stream(event: Any) -> AsyncIterator[bytes]:
    for _ in range(PIECES):
        yield PIECE
