"""Sanic (its own httptools protocol on uvloop) answering the same JSON; a POST reads and
decodes the body as JSON first, as the bare ASGI app does.

    python -m sanic benchmarks.apps.sanic_app:app --port PORT --single-process --no-access-logs
"""

from typing import Any

import msgspec
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, raw

app = Sanic("bench")
app.config.REQUEST_MAX_SIZE = 8 * 1024 * 1024
BODY = b'{"ok":true}'


@app.get("/noop")
async def noop(request: Request) -> HTTPResponse:
    return raw(BODY, content_type="application/json")


@app.post("/noop")
async def ingest(request: Request) -> HTTPResponse:
    payload: Any = msgspec.json.decode(request.body)
    del payload
    return raw(BODY, content_type="application/json")
