"""Streamed responses: a handler that returns an iterator of bytes (or text) sends its answer
piece by piece, as Lambda's response streaming does.

A handler of an HTTP route or of ``InvokeWithResponseStream`` may return

- an async iterator (``async def`` with ``yield``) or a generator of ``bytes`` / ``str``;
- :class:`StreamingResponse`, to choose the status and headers as well;
- :func:`sse`, server-sent events (``text/event-stream``) from :class:`ServerSentEvent`\\ s,
  strings or JSON values.

The stream is sent while the invocation runs: the function's timeout and its concurrency slot
cover it until the last piece. Lambda's limits apply: 200 MB at most; past the first 6 MB at
most 2 MB/s (``Router(stream_bandwidth_cap=False)`` lifts the rate cap).
"""

from __future__ import annotations

import asyncio
import types
from asyncio import sleep
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from time import monotonic
from typing import Any

import msgspec

#: Lambda's limits for streamed responses (bytes; bytes a second after the burst).
STREAM_RESPONSE_LIMIT = 200 * 1024 * 1024
STREAM_BURST = 6 * 1024 * 1024
STREAM_RATE = 2 * 1024 * 1024

_encoder = msgspec.json.Encoder()
_END = object()


class ResponseSizeTooLarge(Exception):
    """A streamed response passed Lambda's 200 MB limit."""


class StreamingResponse:
    """A response sent in pieces (chunked transfer on HTTP/1.1).

    >>> async def numbers():
    ...     for n in range(3):
    ...         yield f"{n}\\n"
    >>> return StreamingResponse(numbers(), headers={"content-type": "text/plain"})
    """

    __slots__ = ("content", "headers", "status")

    def __init__(
        self,
        content: AsyncIterable[bytes | str] | Iterable[bytes | str],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str = "application/octet-stream",
    ) -> None:
        if isinstance(content, (bytes, str)) or not (
            hasattr(content, "__aiter__") or hasattr(content, "__iter__")
        ):
            raise TypeError(
                f"StreamingResponse needs an iterator of bytes or str, not {type(content).__name__}"
            )
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError(f"status={status!r} is not an HTTP status code")
        self.content = content
        self.status = status
        self.headers = {k.lower(): str(v) for k, v in (headers or {}).items()}
        self.headers.setdefault("content-type", media_type)

    def __repr__(self) -> str:
        return f"StreamingResponse(status={self.status})"


class ServerSentEvent(msgspec.Struct, kw_only=True):
    """One event of a ``text/event-stream``: ``data`` (text, or any JSON value), and the
    optional ``event`` name, ``id`` and ``retry`` (milliseconds)."""

    data: Any = None
    event: str | None = None
    id: str | None = None
    retry: int | None = None


def encode_event(item: ServerSentEvent | str | Any) -> bytes:
    """The wire form of one server-sent event (a str is its data, anything else JSON)."""
    event = item if isinstance(item, ServerSentEvent) else ServerSentEvent(data=item)
    lines: list[str] = []
    if event.event is not None:
        lines.append(f"event: {_one_line('event', event.event)}")
    if event.id is not None:
        lines.append(f"id: {_one_line('id', event.id)}")
    if event.retry is not None:
        lines.append(f"retry: {int(event.retry)}")
    data = event.data
    if data is not None:
        text = data if isinstance(data, str) else _encoder.encode(data).decode()
        lines.extend(f"data: {line}" for line in text.splitlines() or [""])
    return ("\n".join(lines) + "\n\n").encode()


def _one_line(field: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"a server-sent event's {field} cannot hold a line break: {value!r}")
    return value


def sse(
    events: AsyncIterable[Any] | Iterable[Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """Server-sent events: each item of ``events`` (:class:`ServerSentEvent`, str, or a JSON
    value) becomes one event of a ``text/event-stream`` response."""
    if hasattr(events, "__aiter__"):
        source: AsyncIterable[Any] = events  # type: ignore[assignment]
    else:
        source = _aiter_of(iter(events))

    async def encoded() -> AsyncIterator[bytes]:
        async for item in source:
            yield encode_event(item)

    return StreamingResponse(
        encoded(),
        status,
        {"cache-control": "no-cache", "x-accel-buffering": "no", **(headers or {})},
        "text/event-stream",
    )


async def _aiter_of(items: Iterator[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class Stream:
    """A handler's stream, opened: the status and headers it asked for and its pieces."""

    __slots__ = ("chunks", "headers", "status")

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], chunks: AsyncIterator[bytes]
    ):
        self.status = status
        self.headers = headers
        self.chunks = chunks


#: What most handlers return: never a stream (one set look-up instead of the checks below).
_PLAIN = frozenset((dict, list, str, bytes, int, float, bool, type(None)))


def open_stream(value: Any, executor: Executor) -> Stream | None:
    """``value`` as a :class:`Stream` if a handler returned one, else ``None``. A generator's
    pieces are made in ``executor`` (they run the handler's synchronous code)."""
    if type(value) in _PLAIN:
        return None
    if isinstance(value, StreamingResponse):
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in value.headers.items()]
        return Stream(value.status, headers, _pieces(value.content, executor))
    if hasattr(type(value), "__aiter__") or isinstance(value, types.GeneratorType):
        headers = [(b"content-type", b"application/octet-stream")]
        return Stream(200, headers, _pieces(value, executor))
    return None


async def _pieces(
    content: AsyncIterable[bytes | str] | Iterable[bytes | str], executor: Executor
) -> AsyncIterator[bytes]:
    if hasattr(content, "__aiter__"):
        async for piece in content:
            yield _bytes(piece)
        return
    iterator = iter(content)
    loop = asyncio.get_running_loop()
    try:
        while True:
            piece = await loop.run_in_executor(executor, next, iterator, _END)
            if piece is _END:
                return
            yield _bytes(piece)
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _bytes(piece: Any) -> bytes:
    if isinstance(piece, bytes):
        return piece
    if isinstance(piece, str):
        return piece.encode()
    if isinstance(piece, (bytearray, memoryview)):
        return bytes(piece)
    raise TypeError(f"a streamed response yields bytes or str, not {type(piece).__name__}")


async def limited(
    chunks: AsyncIterator[bytes],
    *,
    limit: int = STREAM_RESPONSE_LIMIT,
    burst: int = STREAM_BURST,
    rate: float | None = STREAM_RATE,
) -> AsyncIterator[bytes]:
    """``chunks`` under Lambda's streaming limits: :class:`ResponseSizeTooLarge` past
    ``limit`` bytes; past ``burst`` bytes, no faster than ``rate`` bytes a second."""
    sent = 0
    capped_since: float | None = None
    async for chunk in chunks:
        sent += len(chunk)
        if sent > limit:
            raise ResponseSizeTooLarge(f"the streamed response is over {limit} bytes")
        yield chunk
        if rate is not None and sent > burst:
            now = monotonic()
            if capped_since is None:
                capped_since = now
            due = capped_since + (sent - burst) / rate
            if due > now:
                await sleep(due - now)
