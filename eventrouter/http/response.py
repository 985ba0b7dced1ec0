"""``Response``: what a route handler returns to choose status, headers and bytes."""

from __future__ import annotations

from collections.abc import Mapping


class Response:
    """An explicit HTTP response.

    >>> return Response(b"<h1>hi</h1>", status=201, headers={"content-type": "text/html"})

    ``body`` may be ``bytes`` or ``str`` (sent as UTF-8). Without a ``content-type`` header,
    ``media_type`` (default ``application/octet-stream`` for bytes, ``text/plain`` for str)
    is used.
    """

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"status={status!r} is not an HTTP status code")
        if isinstance(body, str):
            data = body.encode()
            default_type = "text/plain; charset=utf-8"
        else:
            data = bytes(body)
            default_type = "application/octet-stream"
        self.body = data
        self.status = status
        self.headers = {k.lower(): str(v) for k, v in (headers or {}).items()}
        if data and "content-type" not in self.headers:
            self.headers["content-type"] = media_type or default_type

    def __repr__(self) -> str:
        return f"Response(status={self.status}, {len(self.body)} bytes)"
