"""Streamed responses on HTTP: a handler's stream (``eventrouter/streaming.py``) sent to the
client while the invocation runs.

``RouteStream`` writes an application route's stream as the body (chunked transfer on
HTTP/1.1); ``InvokeStream`` writes Lambda's ``InvokeWithResponseStream`` answer: the pieces
as ``PayloadChunk`` events of an ``application/vnd.amazon.eventstream`` body, then one
``InvokeComplete`` event. Either is the invoker's stream sink: it is awaited inside the
invocation, so the function's timeout cancels it, and a client that leaves cancels the
handler's stream (the invocation then ends; Lambda would keep it running to completion).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib

import msgspec
import structlog

from eventrouter.arns import LATEST
from eventrouter.http.asgi import Receive, Send
from eventrouter.streaming import STREAM_RATE, Stream, limited

log = structlog.get_logger("eventrouter.http")


class StreamAborted(Exception):
    """The response was cut short after its head was sent (a timeout or an error mid-stream):
    the connection is closed without ending the body, so the client sees it truncated."""


class StreamOut:
    """Drains a stream to an ASGI client; subclasses say how its head and pieces are framed."""

    __slots__ = ("aborted", "cap", "receive", "send", "started")

    def __init__(self, send: Send, receive: Receive, cap: bool) -> None:
        self.send = send
        self.receive = receive
        self.cap = cap
        #: The head went out: the answer can no longer become an error response.
        self.started = False
        #: The client left before the end.
        self.aborted = False

    async def __call__(self, stream: Stream) -> None:
        drain = asyncio.ensure_future(self._drain(stream))
        gone = asyncio.ensure_future(self._client_gone())
        try:
            done, _ = await asyncio.wait((drain, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when the invocation's timeout cancels this task
            gone.cancel()
            if not drain.done():
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain
        if drain in done:
            drain.result()  # the handler's error while streaming, if any
            return
        self.aborted = True
        log.info("client left during a streamed response: stream cancelled")

    async def _drain(self, stream: Stream) -> None:
        # The head goes with the first piece: a handler that fails before it still gets an
        # error response.
        async for chunk in limited(stream.chunks, rate=STREAM_RATE if self.cap else None):
            if chunk:
                if not self.started:
                    self.started = True
                    await self.head(stream)
                await self.piece(chunk)
        if not self.started:
            self.started = True
            await self.head(stream)

    async def _client_gone(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass

    async def head(self, stream: Stream) -> None:
        raise NotImplementedError

    async def piece(self, chunk: bytes) -> None:
        raise NotImplementedError


class RouteStream(StreamOut):
    """An application route's stream: the handler's status and headers, then the body."""

    __slots__ = ("request_id",)

    def __init__(self, send: Send, receive: Receive, cap: bool, request_id: str) -> None:
        super().__init__(send, receive, cap)
        self.request_id = request_id

    async def head(self, stream: Stream) -> None:
        headers = [*stream.headers, (b"x-amzn-requestid", self.request_id.encode())]
        await self.send(
            {"type": "http.response.start", "status": stream.status, "headers": headers}
        )

    async def piece(self, chunk: bytes) -> None:
        await self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def end(self) -> None:
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})


# -- InvokeWithResponseStream -----------------------------------------------------------------

EVENT_STREAM = b"application/vnd.amazon.eventstream"
_encoder = msgspec.json.Encoder()


def _header(name: bytes, value: bytes) -> bytes:
    return struct.pack("!B", len(name)) + name + struct.pack("!BH", 7, len(value)) + value


def event_message(event_type: bytes, payload: bytes, content_type: bytes) -> bytes:
    """One message of the AWS event stream encoding (the framing botocore's
    ``EventStreamBuffer`` parses): prelude with its CRC32, string headers, payload, CRC32."""
    headers = (
        _header(b":event-type", event_type)
        + _header(b":content-type", content_type)
        + _header(b":message-type", b"event")
    )
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(headers))
    prelude += struct.pack("!I", zlib.crc32(prelude))
    message = prelude + headers + payload
    return message + struct.pack("!I", zlib.crc32(message))


def payload_chunk(data: bytes) -> bytes:
    return event_message(b"PayloadChunk", data, b"application/octet-stream")


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    document = {
        key: value
        for key, value in (
            ("ErrorCode", error_code),
            ("ErrorDetails", error_details),
            ("LogResult", log_result),
        )
        if value is not None
    }
    return event_message(b"InvokeComplete", _encoder.encode(document), b"application/json")


class InvokeStream(StreamOut):
    """``InvokeWithResponseStream``'s answer: 200, the stream's content type, its pieces as
    ``PayloadChunk`` events; :meth:`complete` writes ``InvokeComplete`` and ends the body."""

    __slots__ = ("request_id",)

    def __init__(self, send: Send, receive: Receive, cap: bool, request_id: str) -> None:
        super().__init__(send, receive, cap)
        self.request_id = request_id

    async def head(self, stream: Stream) -> None:
        content_type = next(
            (v for k, v in stream.headers if k == b"content-type"), b"application/octet-stream"
        )
        await self.start(content_type)

    async def start(self, content_type: bytes) -> None:
        headers = [
            (b"content-type", content_type),
            (b"x-amzn-requestid", self.request_id.encode()),
            (b"x-amz-executed-version", LATEST.encode()),
        ]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def piece(self, chunk: bytes) -> None:
        await self.send(
            {"type": "http.response.body", "body": payload_chunk(chunk), "more_body": True}
        )

    async def complete(self, message: bytes) -> None:
        await self.send({"type": "http.response.body", "body": message, "more_body": False})
