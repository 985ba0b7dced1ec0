"""HTTP/1.1 on the wire for eventrouter's own server (``http/native.py``): its limits, a
parsed request waiting its turn, and how a response's ASGI messages become bytes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from eventrouter.config import SYNC_PAYLOAD_LIMIT


class Limits:
    """The server's limits and timeouts (seconds; sizes in bytes)."""

    __slots__ = (
        "body_timeout",
        "header_timeout",
        "keep_alive_timeout",
        "max_body",
        "max_connections",
        "max_header_bytes",
        "max_headers",
    )

    def __init__(
        self,
        *,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        keep_alive_timeout: float = 5.0,
        max_connections: int = 10_000,
        max_header_bytes: int = 64 * 1024,
        max_headers: int = 100,
        max_body: int = SYNC_PAYLOAD_LIMIT,
    ) -> None:
        #: To receive a request's headers once its first byte came (slowloris), its body,
        #: and the next request on an idle keep-alive connection.
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.keep_alive_timeout = keep_alive_timeout
        #: Open connections at most; more are closed at once.
        self.max_connections = max_connections
        #: The request line and headers together, and header fields per request (431).
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        #: A body larger is refused (413), from its Content-Length before it is read.
        self.max_body = max_body


_REASONS = {
    100: b"Continue", 200: b"OK", 201: b"Created", 202: b"Accepted", 204: b"No Content",
    301: b"Moved Permanently", 302: b"Found", 304: b"Not Modified",
    307: b"Temporary Redirect", 400: b"Bad Request", 401: b"Unauthorized",
    403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
    408: b"Request Timeout", 413: b"Content Too Large", 415: b"Unsupported Media Type",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable",
    504: b"Gateway Timeout",
}  # fmt: skip
_STATUS_LINES: dict[int, bytes] = {}
ERROR_TYPES = {413: b"RequestTooLarge", 431: b"RequestHeaderFieldsTooLarge"}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        reason = _REASONS.get(status, b"")
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    return line


class Request:
    """One parsed request waiting for (or in) its turn."""

    __slots__ = ("body", "expect_continue", "keep_alive", "scope", "too_large")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.body: list[bytes] = []
        self.keep_alive = True
        self.expect_continue = False
        #: Its body passes ``Limits.max_body``: dropped unread, the app told (``TOO_LARGE``).
        self.too_large = False


class ResponseFrame:
    """The response of one request as the app sends it: head, then body chunks."""

    __slots__ = ("body_given", "chunked", "finished", "start", "written")

    def __init__(self) -> None:
        self.body_given = False
        self.start: dict[str, Any] | None = None
        self.written = False
        self.chunked = False
        self.finished = False

    def frame(self, message: dict[str, Any], head: bool, keep_alive: bool) -> list[bytes]:
        """The pieces of bytes of one ``http.response.body`` message: the head first time
        (with ``Content-Length`` when the whole body is here, else chunked); the body's bytes
        are never copied here."""
        chunk: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        self.finished = not more
        out: list[bytes] = []
        start = self.start
        if not self.written:
            self.written = True
            status = start["status"] if start is not None else 500
            out.append(status_line(status))
            has_length = False
            for name, value in start.get("headers", ()) if start is not None else ():
                if name.lower() == b"content-length":
                    has_length = True
                out.append(b"%s: %s\r\n" % (name, value))
            if not has_length:
                if more:
                    self.chunked = True
                    out.append(b"transfer-encoding: chunked\r\n")
                else:
                    out.append(b"content-length: %d\r\n" % len(chunk))
            if not keep_alive:
                out.append(b"connection: close\r\n")
            out.append(b"\r\n")
        if head:
            return out
        if self.chunked:
            if chunk:
                out += (b"%x\r\n" % len(chunk), chunk, b"\r\n")
            if not more:
                out.append(b"0\r\n\r\n")
        elif chunk:
            out.append(chunk)
        return out


async def send_error(send: Callable[[dict[str, Any]], Awaitable[None]], status: int) -> None:
    body = b'{"errorType":"InternalError","errorMessage":"the request failed"}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
