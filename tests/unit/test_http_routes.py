"""Route templates, route clashes, response shaping and the standalone ASGI app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from eventrouter import ConfigError, Http, Response, Router
from eventrouter.http.app import shape
from eventrouter.http.invoke_api import function_name
from eventrouter.http.server import parse_address
from eventrouter.sources.http.source import parse_route


async def noop(event: Any) -> None: ...


def test_parse_route() -> None:
    route = parse_route("POST /orders/{order_id}")
    assert route.methods == ("POST",)
    assert route.params == ("order_id",)
    assert route.pattern is not None
    assert parse_route("get,head /items").methods == ("GET", "HEAD")
    assert parse_route("GET /items").pattern is None
    assert len(parse_route("ANY /x").methods) == 7
    greedy = parse_route("GET /files/{path+}")
    import re

    match = re.match(greedy.pattern or "", "/files/a/b.txt")
    assert match is not None and match.group("path") == "a/b.txt"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/orders", "METHOD /path"),
        ("FETCH /orders", "unknown method"),
        ("GET orders", "must start with '/'"),
        ("GET /a/{x}/{x}", "appears twice"),
        ("GET /a/{rest+}/b", "must come last"),
        ("GET /a/{x", "malformed"),
        ("GET /a?b=1", "'?'"),
        ("GET /healthz", "served by the router"),
        ("POST /2015-03-31/functions/x/invocations", "served by the router"),
    ],
)
def test_bad_routes(route: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Http(route)


def test_route_clash_is_an_error() -> None:
    router = Router("t")
    router.on_event(Http("GET,POST /a/{x}"), name="one")(noop)
    router.on_event(Http("DELETE /a/{x}"), name="two")(noop)  # other method: fine
    with pytest.raises(ConfigError, match="already served by function 'one'"):
        router.on_event(Http("POST /a/{x}"), name="three")(noop)


def test_raw_or_typed_input() -> None:
    import msgspec

    router = Router("t")

    class Body(msgspec.Struct):
        a: int

    async def raw(event: dict[str, Any]) -> None: ...

    async def bare(event, ctx):  # type: ignore[no-untyped-def]
        ...

    router.on_event(Http("GET /raw"))(raw)
    router.on_event(Http("GET /bare"))(bare)
    assert router.functions["raw"].http_raw and router.functions["bare"].http_raw


def test_shape_of_return_values() -> None:
    assert shape({"a": 1}) == (200, b'{"a":1}', [(b"content-type", b"application/json")])
    status, body, headers = shape({"statusCode": 204})
    assert (status, body) == (204, b"")
    status, body, headers = shape({"statusCode": 200, "body": {"x": 1}})
    assert body == b'{"x":1}' and (b"content-type", b"application/json") in headers
    status, body, headers = shape(Response("hé", status=418))
    assert (status, body) == (418, "hé".encode())
    assert (b"content-type", b"text/plain; charset=utf-8") in headers
    with pytest.raises(ValueError, match="statusCode"):
        shape({"statusCode": 99})
    with pytest.raises(ValueError):
        Response(status=1000)


def test_function_names_in_the_invoke_api() -> None:
    assert function_name("echo", None) == ("echo", None)
    assert function_name("echo:$LATEST", None) == ("echo", "$LATEST")
    assert function_name("arn:aws:lambda:eu-west-1:123456789012:function:echo", "7") == (
        "echo",
        "7",
    )
    assert function_name("123456789012:function:echo:$LATEST", None) == ("echo", "$LATEST")
    assert function_name("arn:aws:s3:::bucket", None) == ("", None)


def test_parse_address() -> None:
    assert parse_address("127.0.0.1:8000") == ("127.0.0.1", 8000)
    assert parse_address(":0") == ("0.0.0.0", 0)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("8000", "host:port", "h:70000"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            parse_address(bad)


@pytest.mark.anyio
async def test_standalone_asgi_app(tmp_path: Path) -> None:
    router = Router("t")

    @router.on_event(Http("GET /hello/{name}"))
    async def hello(event: dict[str, Any]) -> str:
        return f"hello {event['pathParameters']['name']}"

    @router.on_event()
    async def echo(event: Any) -> Any:
        return event

    app = router.asgi(state_dir=str(tmp_path))
    # The ASGI lifespan starts the router's engine and stops it again.
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []
    started = False

    async def receive() -> dict[str, Any]:
        nonlocal started
        if messages[0]["type"] == "lifespan.shutdown" and not started:
            started = True
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                r = await client.get("/hello/ann")
                assert r.status_code == 200 and r.json() == "hello ann"
                r = await client.post("/2015-03-31/functions/echo/invocations", content=b"[1]")
                assert r.json() == [1]
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started
    assert app.runtime is not None and not app.runtime.ready  # stopped on lifespan shutdown


@pytest.mark.anyio
async def test_standalone_app_starts_on_first_request(tmp_path: Path) -> None:
    router = Router("t")

    @router.on_event(Http("GET /ping"))
    async def ping(event: Any) -> str:
        return "pong"

    app = router.asgi(state_dir=str(tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/ping")).json() == "pong"
        assert (await c.get("/readyz")).status_code == 200
    await app.aclose()


@pytest.mark.anyio
async def test_debug_adds_stack_traces(tmp_path: Path) -> None:
    for debug in (False, True):
        router = Router("t", debug=debug)

        @router.on_event(Http("GET /boom"))
        async def boom(event: Any) -> None:
            raise KeyError("missing")

        app = router.asgi(state_dir=str(tmp_path / str(debug)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = (await client.get("/boom")).json()
        await app.aclose()
        assert body["errorType"] == "KeyError"
        assert ("stackTrace" in body) is debug
        if debug:
            assert any("missing" in line for line in body["stackTrace"])
