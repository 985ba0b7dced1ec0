"""Streamed responses over real HTTP, on both servers: routes that return an async iterator,
a generator, ``StreamingResponse`` or ``sse(...)`` (httpx reading chunk by chunk, and
Chromium's ``EventSource``); Lambda's ``InvokeWithResponseStream`` read by boto3's
event-stream parser; a client that leaves cancels the handler; the timeout still applies."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.from_thread
import httpx
import pytest

from eventrouter import Http, Response, Router, ServerSentEvent, StreamingResponse, sse
from eventrouter.testing import run_router
from tests.integration.test_dashboard_browser import CHROMIUM_ARGS, chromium
from tests.services import lambda_client

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

SERVERS = ["eventrouter", "uvicorn"]


class Gates:
    """What the handlers wait for and tell (one router per test, so fresh each time)."""

    def __init__(self) -> None:
        self.go = anyio.Event()
        self.ended = anyio.Event()


def streaming_router(gates: Gates) -> Router:
    router = Router("streams")

    @router.on_event(Http("GET /gated"))
    async def gated(event: dict[str, Any]) -> AsyncIterator[bytes]:
        yield b"first;"
        await gates.go.wait()  # the test saw the first piece before this one is made
        yield "second"

    @router.on_event(Http("GET /numbers"))
    def numbers(event: dict[str, Any]) -> StreamingResponse:
        def lines() -> Iterator[str]:
            for n in range(5):
                yield f"{n}\n"

        return StreamingResponse(lines(), status=201, headers={"content-type": "text/plain"})

    @router.on_event(Http("GET /forever"), timeout=30)
    async def forever(event: dict[str, Any]) -> AsyncIterator[bytes]:
        try:
            yield b"tick"
            await anyio.sleep_forever()
        finally:
            gates.ended.set()

    @router.on_event(Http("GET /late"), timeout=1)
    async def late(event: dict[str, Any]) -> AsyncIterator[bytes]:
        yield b"in time;"
        await anyio.sleep_forever()

    @router.on_event(Http("GET /broken"))
    async def broken(event: dict[str, Any]) -> AsyncIterator[bytes]:
        raise LookupError("no such stream")
        yield b""  # pragma: no cover - makes this an async generator

    @router.on_event(Http("GET /events"))
    async def events(event: dict[str, Any]) -> StreamingResponse:
        async def source() -> AsyncIterator[Any]:
            yield "hello"
            yield {"n": 1}
            yield ServerSentEvent(data="two\nlines", event="note", id="3")

        return sse(source())

    @router.on_event(Http("GET /page"))
    async def page(event: dict[str, Any]) -> Response:
        return Response(PAGE, headers={"content-type": "text/html"})

    @router.on_event(None)
    async def story(event: dict[str, Any]) -> AsyncIterator[bytes]:
        print("telling", event["parts"], "parts")
        for n in range(event["parts"]):
            yield f"part {n};".encode()
            if n == 0 and event.get("gated"):
                await gates.go.wait()

    @router.on_event(None)
    async def plain(event: dict[str, Any]) -> dict[str, Any]:
        return {"plain": event}

    @router.on_event(None)
    async def fails_midway(event: dict[str, Any]) -> AsyncIterator[bytes]:
        yield b"so far;"
        raise ValueError("the second part is missing")

    return router


PAGE = """<!doctype html><meta charset="utf-8"><ul id="got"></ul><script>
const source = new EventSource("/events");
const got = document.getElementById("got");
const add = (kind, e) => {
  const li = document.createElement("li");
  li.textContent = kind + "|" + e.data + "|" + e.lastEventId;
  got.appendChild(li);
  if (got.children.length === 3) { source.close(); document.body.dataset.done = "yes"; }
};
source.onmessage = (e) => add("message", e);
source.addEventListener("note", (e) => add("note", e));
</script>"""


@contextlib.asynccontextmanager
async def serving(server: str) -> AsyncIterator[tuple[str, Gates]]:
    gates = Gates()
    async with run_router(streaming_router(gates), http="127.0.0.1:0", server=server) as app:
        yield f"http://127.0.0.1:{app.engine.http_port}", gates


@pytest.mark.parametrize("server", SERVERS)
async def test_an_async_generator_is_sent_piece_by_piece(server: str) -> None:
    async with serving(server) as (url, gates), httpx.AsyncClient(base_url=url) as client:
        with anyio.fail_after(10):
            async with client.stream("GET", "/gated") as response:
                assert response.status_code == 200
                assert response.headers["transfer-encoding"] == "chunked"
                assert response.headers["content-type"] == "application/octet-stream"
                assert response.headers["x-amzn-requestid"]
                pieces = response.aiter_raw()
                # The handler waits for the test before its second piece: the first must
                # arrive on its own (a buffered response would never come).
                assert await pieces.__anext__() == b"first;"
                gates.go.set()
                rest = b"".join([piece async for piece in pieces])
        assert rest == b"second"


@pytest.mark.parametrize("server", SERVERS)
async def test_streaming_response_from_a_synchronous_generator(server: str) -> None:
    async with serving(server) as (url, _), httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/numbers")
        head = await client.head("/numbers")
    assert response.status_code == 201
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "0\n1\n2\n3\n4\n"
    assert head.status_code == 201 and head.content == b""


@pytest.mark.parametrize("server", SERVERS)
async def test_a_client_that_leaves_cancels_the_handler(server: str) -> None:
    async with serving(server) as (url, gates), httpx.AsyncClient(base_url=url) as client:
        with anyio.fail_after(10):
            async with client.stream("GET", "/forever") as response:
                assert await response.aiter_raw().__anext__() == b"tick"
            # Leaving the block closed the connection: the handler's generator is cancelled.
            await gates.ended.wait()
            # The router serves on.
            assert (await client.get("/numbers")).status_code == 201


@pytest.mark.parametrize("server", SERVERS)
async def test_the_timeout_cuts_a_stream_short(server: str) -> None:
    async with serving(server) as (url, _), httpx.AsyncClient(base_url=url) as client:
        received = b""
        with anyio.fail_after(10), pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("GET", "/late") as response:
                assert response.status_code == 200  # the head went out with the first piece
                async for piece in response.aiter_raw():
                    received += piece
        # The body ended without its last chunk: the client knows it is incomplete.
        assert received == b"in time;"


@pytest.mark.parametrize("server", SERVERS)
async def test_a_handler_that_fails_before_its_first_piece_gets_an_error_response(
    server: str,
) -> None:
    async with serving(server) as (url, _), httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/broken")
    assert response.status_code == 502
    assert response.json()["errorType"] == "LookupError"
    assert response.json()["errorMessage"] == "no such stream"


@pytest.mark.parametrize("server", SERVERS)
async def test_server_sent_events(server: str) -> None:
    async with serving(server) as (url, _), httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/events")
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.text == (
        'data: hello\n\ndata: {"n":1}\n\nevent: note\nid: 3\ndata: two\ndata: lines\n\n'
    )


async def test_a_browsers_event_source_reads_the_events() -> None:
    executable = chromium()
    async_api = pytest.importorskip("playwright.async_api")
    async with serving("eventrouter") as (url, _), async_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/page")
            await page.wait_for_selector("body[data-done=yes]", timeout=10_000)
            items = await page.locator("#got li").all_text_contents()
        finally:
            await browser.close()
    assert items == ["message|hello|", 'message|{"n":1}|', "note|two\nlines|3"]


# -- InvokeWithResponseStream ------------------------------------------------------------------


def read_events(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list(result["EventStream"])


@pytest.mark.parametrize("server", SERVERS)
async def test_boto3_reads_invoke_with_response_stream_chunk_by_chunk(server: str) -> None:
    async with serving(server) as (url, gates):

        def call() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            client = lambda_client(url)
            result = client.invoke_with_response_stream(
                FunctionName="story", Payload=b'{"parts": 3, "gated": true}', LogType="Tail"
            )
            stream = iter(result["EventStream"])
            first = next(stream)  # before the handler may make its second part
            anyio.from_thread.run_sync(gates.go.set)
            return result, [first, *stream]

        with anyio.fail_after(20):
            result, events = await anyio.to_thread.run_sync(call)
    assert result["StatusCode"] == 200
    assert result["ExecutedVersion"] == "$LATEST"
    assert result["ResponseStreamContentType"] == "application/octet-stream"
    chunks = [e["PayloadChunk"]["Payload"] for e in events if "PayloadChunk" in e]
    assert chunks == [b"part 0;", b"part 1;", b"part 2;"]
    complete = events[-1]["InvokeComplete"]
    assert "ErrorCode" not in complete
    log = base64.b64decode(complete["LogResult"]).decode()
    assert "telling 3 parts" in log and "REPORT RequestId:" in log


@pytest.mark.parametrize("server", SERVERS)
async def test_invoke_with_response_stream_of_a_buffered_handler_and_of_a_failure(
    server: str,
) -> None:
    async with serving(server) as (url, _):

        def call() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
            client = lambda_client(url)
            plain = read_events(
                client.invoke_with_response_stream(FunctionName="plain", Payload=b'{"a": 1}')
            )
            failed = read_events(client.invoke_with_response_stream(FunctionName="fails_midway"))
            try:
                client.invoke_with_response_stream(FunctionName="nobody")
            except client.exceptions.ResourceNotFoundException as exc:
                missing = exc.response["Error"]["Code"]
            return plain, failed, missing

        plain, failed, missing = await anyio.to_thread.run_sync(call)
    assert [e["PayloadChunk"]["Payload"] for e in plain[:-1]] == [b'{"plain":{"a":1}}']
    assert "ErrorCode" not in plain[-1]["InvokeComplete"]
    assert failed[0]["PayloadChunk"]["Payload"] == b"so far;"
    assert failed[-1]["InvokeComplete"]["ErrorCode"] == "ValueError"
    assert failed[-1]["InvokeComplete"]["ErrorDetails"] == "the second part is missing"
    assert missing == "ResourceNotFoundException"
