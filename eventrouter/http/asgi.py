"""ASGI's types and the primitives every HTTP path of the router uses (one module, so the
app, the Invoke API and the server share them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from eventrouter.response import JSON as JSON  # the HTTP face's name for it too

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: A key of eventrouter's own server in an ``http.request`` message: the body passed the
#: server's limit and was not read (:func:`read_body` then answers ``None``).
TOO_LARGE = "eventrouter.body_too_large"


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


async def read_body(receive: Receive, limit: int, scope: Scope | None = None) -> bytes | None:
    """The whole request body, or ``None`` once it passes ``limit`` bytes (at once, without
    reading it, when the request's ``Content-Length`` says it will: under uvicorn, whose
    server reads bodies of any size, as under eventrouter's own)."""
    if scope is not None:
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return None
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    if TOO_LARGE in message:
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_encoder = msgspec.json.Encoder()


async def aws_error(
    send: Send,
    status: int,
    error_type: str,
    message: str,
    request_id: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    **extra: Any,
) -> None:
    """An error of an AWS REST-JSON API (Lambda's): ``{"Type", "message"}`` and the type in
    ``x-amzn-ErrorType``, which botocore maps to its exception classes."""
    body = _encoder.encode({"Type": "User", "message": message, **extra})
    sent = [
        (b"content-type", JSON),
        (b"x-amzn-errortype", error_type.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        *(headers or ()),
    ]
    await respond(send, status, body, sent)


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
