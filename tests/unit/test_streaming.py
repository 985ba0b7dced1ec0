"""Streamed responses without a network: what counts as a stream, server-sent events' wire
form, Lambda's size limit and bandwidth cap (on a fake clock), and the event stream framing
of ``InvokeWithResponseStream`` as botocore parses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from eventrouter import ServerSentEvent, StreamingResponse
from eventrouter.http.streams import invoke_complete, payload_chunk
from eventrouter.streaming import ResponseSizeTooLarge, encode_event, limited, open_stream

pytestmark = pytest.mark.anyio
EXECUTOR = ThreadPoolExecutor(1)


async def gen(*pieces: bytes) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def test_only_iterators_and_streaming_responses_are_streams() -> None:
    for value in ({"a": 1}, [1, 2], "text", b"bytes", None, 3):
        assert open_stream(value, EXECUTOR) is None
    stream = open_stream(gen(b"x"), EXECUTOR)
    assert stream is not None and stream.status == 200
    assert stream.headers == [(b"content-type", b"application/octet-stream")]
    response = StreamingResponse(iter(["a"]), status=206, headers={"X-Part": "1"})
    opened = open_stream(response, EXECUTOR)
    assert opened is not None and opened.status == 206
    assert (b"x-part", b"1") in opened.headers


def test_streaming_response_refuses_what_is_not_an_iterator() -> None:
    with pytest.raises(TypeError, match="iterator of bytes or str"):
        StreamingResponse(b"whole")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        StreamingResponse(iter([b""]), status=700)


async def test_pieces_must_be_bytes_or_text() -> None:
    stream = open_stream((x for x in [b"ok", 5]), EXECUTOR)
    assert stream is not None
    pieces = stream.chunks
    assert await pieces.__anext__() == b"ok"
    with pytest.raises(TypeError, match="bytes or str, not int"):
        await pieces.__anext__()


def test_server_sent_events_wire_form() -> None:
    assert encode_event("hi") == b"data: hi\n\n"
    assert encode_event({"n": [1]}) == b'data: {"n":[1]}\n\n'
    event = ServerSentEvent(data="a\nb", event="e", id="7", retry=1500)
    assert encode_event(event) == b"event: e\nid: 7\nretry: 1500\ndata: a\ndata: b\n\n"
    with pytest.raises(ValueError, match="line break"):
        encode_event(ServerSentEvent(data="x", event="two\nlines"))


async def test_the_size_limit() -> None:
    out = []
    with pytest.raises(ResponseSizeTooLarge, match="over 10 bytes"):
        async for chunk in limited(gen(b"12345", b"67890", b"1"), limit=10, rate=None):
            out.append(chunk)
    assert out == [b"12345", b"67890"]


async def test_the_bandwidth_cap_after_the_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``burst`` bytes the stream waits so that it goes no faster than ``rate``."""
    clock = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr("eventrouter.streaming.monotonic", lambda: clock[0])
    monkeypatch.setattr("eventrouter.streaming.sleep", sleep)
    pieces = [b"x" * 100] * 6  # burst 200 bytes, then 100 bytes/s
    got = [c async for c in limited(gen(*pieces), burst=200, rate=100.0)]
    assert got == pieces
    # Nothing waits within the burst; each 100 bytes past it takes one second.
    assert slept == [1.0, 1.0, 1.0, 1.0]
    no_cap: list[Any] = [c async for c in limited(gen(*pieces), burst=200, rate=None)]
    assert len(no_cap) == 6 and len(slept) == 4


def test_event_stream_messages_parse_with_botocore() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(payload_chunk(b"abc") + invoke_complete("E", "broke", "bG9n"))
    first, second = list(buffer)
    assert first.headers == {
        ":event-type": "PayloadChunk",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
    assert first.payload == b"abc"
    assert second.headers[":event-type"] == "InvokeComplete"
    assert second.payload == b'{"ErrorCode":"E","ErrorDetails":"broke","LogResult":"bG9n"}'
