"""The ceiling: a raw ASGI app answering the same JSON.

A POST reads the whole body and decodes it as JSON (msgspec) before answering, as the Invoke
API does with its payload. ``GET /stream`` sends 10 MB in 1 MB pieces (chunked).
"""

from typing import Any

import msgspec

BODY = b'{"ok":true}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"11")]
PIECE = b"x" * (1024 * 1024)
PIECES = 10


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        head = [(b"content-type", b"application/octet-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        for _ in range(PIECES):
            await send({"type": "http.response.body", "body": PIECE, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["method"] == "POST":
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        msgspec.json.decode(b"".join(chunks))
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
