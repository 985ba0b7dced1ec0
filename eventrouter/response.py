"""``Response``, what a route handler returns to choose status, headers and bytes, and how
any return value becomes an HTTP response (:func:`shape`)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import msgspec

#: The content type of JSON bodies.
JSON = b"application/json"
_encoder = msgspec.json.Encoder()


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

    @classmethod
    def json(
        cls, content: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A JSON response with a status and headers of your choosing::

            return Response.json({"id": order.id}, status=201, headers={"location": url})

        ``content`` is anything msgspec encodes (dicts, lists, ``Struct``\\s, dataclasses).
        """
        return cls(_encoder.encode(content), status, headers, media_type="application/json")

    def __repr__(self) -> str:
        return f"Response(status={self.status}, {len(self.body)} bytes)"


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def shape(value: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers for a handler's return value."""
    if isinstance(value, Response):
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in value.headers.items()]
        return value.status, value.body, headers
    if isinstance(value, dict) and "statusCode" in value:
        return _lambda_response(value)
    return 200, _encoder.encode(value), [(b"content-type", JSON)]


def _lambda_response(value: dict[str, Any]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    code = value["statusCode"]
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        raise ValueError(f"statusCode {code!r} is not an HTTP status")
    raw = value.get("body")
    if raw is None:
        body = b""
    elif isinstance(raw, str):
        body = base64.b64decode(raw) if value.get("isBase64Encoded") else raw.encode()
    else:
        body = _encoder.encode(raw)
    headers: list[tuple[bytes, bytes]] = []
    given = value.get("headers") or {}
    if not isinstance(given, dict):
        raise ValueError("headers must be an object")
    for key, header_value in given.items():
        headers.append((str(key).lower().encode("latin-1"), str(header_value).encode("latin-1")))
    for cookie in value.get("cookies") or []:
        headers.append((b"set-cookie", str(cookie).encode("latin-1")))
    if body and not any(k == b"content-type" for k, _ in headers):
        headers.append(
            (
                b"content-type",
                JSON if isinstance(raw, (dict, list)) else b"text/plain; charset=utf-8",
            )
        )
    return code, body, headers
