"""eventrouter's own HTTP/1.1 server (``--server eventrouter``, ``http/native.py``) over raw
sockets: keep-alive, pipelining in order, HEAD, chunked bodies, ``Expect: 100-continue``,
request-smuggling defences, limits, timeouts and a graceful stop; and the same requests
against uvicorn serving the same app, whose answers must agree (differential)."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import msgspec
import pytest

from eventrouter import ConfigError, Http, Response, Router
from eventrouter.http.app import HttpApp
from eventrouter.http.native import Connection, NativeHttpServer
from eventrouter.http.wire import Limits
from eventrouter.runtime.engine import Engine
from eventrouter.testing import run_router

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


class Text(msgspec.Struct):
    text: str


class Hanging:
    """What the ``/hang`` handler tells the test."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.ended = anyio.Event()


HANGING = Hanging()
BIG = b"x" * (512 * 1024)


def app_router() -> Router:
    router = Router("native")

    @router.on_event(Http("GET /items/{item}"))
    async def item(event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "body": {"item": event["pathParameters"]["item"]}}

    @router.on_event(Http("POST /echo"))
    async def echo(body: Text) -> dict[str, int]:
        return {"length": len(body.text)}

    @router.on_event(Http("GET /hang"), timeout=30)
    async def hang(event: dict[str, Any]) -> None:
        HANGING.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            HANGING.ended.set()

    @router.on_event(Http("GET /big"))
    async def big(event: dict[str, Any]) -> Response:
        return Response(BIG)

    @router.on_event(Http("GET /slow"))
    async def slow(event: dict[str, Any]) -> dict[str, str]:
        await anyio.sleep(0.3)
        return {"slow": "done"}

    return router


@contextlib.asynccontextmanager
async def serving(server: str = "eventrouter") -> AsyncIterator[int]:
    async with run_router(app_router(), http="127.0.0.1:0", server=server) as app:
        port = app.engine.http_port
        assert port is not None
        yield port


async def exchange(port: int, data: bytes, within: float = 5.0) -> bytes:
    """Send ``data``; everything the server answers until it closes the connection."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    chunks = []
    async with stream:
        await stream.send(data)
        with anyio.fail_after(within):
            while True:
                try:
                    chunks.append(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status codes of the responses in ``answer`` (a body may end right before the next
    status line, as when pipelined)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


def get(path: str, *extra: str, close: bool = False) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: t", *extra]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def test_keep_alive_and_pipelined_requests_answer_in_order() -> None:
    async with serving() as port:
        answer = await exchange(port, get("/items/a") + get("/slow") + get("/items/c", close=True))
    assert statuses(answer) == [200, 200, 200]
    a, slow, c = answer.index(b'"item":"a"'), answer.index(b'"slow"'), answer.index(b'"item":"c"')
    assert a < slow < c  # the slow one did not let the third overtake it
    assert answer.count(b"connection: close") == 1


async def test_head_has_the_length_and_no_body() -> None:
    async with serving() as port:
        answer = await exchange(
            port, b"HEAD /items/a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert statuses(answer) == [200] and body == b""
    assert b"content-length: " in head.lower()


async def test_chunked_request_body_and_expect_100_continue() -> None:
    body = b'{"text": "hello world"}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:]))
    request = (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked + b"0\r\n\r\n"
    )
    async with serving() as port:
        answer = await exchange(port, request)
        assert statuses(answer) == [200] and answer.endswith(b'{"length":11}')
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            await stream.send(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
                % len(body)
            )
            with anyio.fail_after(5):
                interim = await stream.receive()
            assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            await stream.send(body)
            rest = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
            with anyio.fail_after(5):
                while not rest.endswith(b"}"):
                    rest += await stream.receive()
    assert statuses(rest) == [200] and rest.endswith(b'{"length":11}')


SMUGGLING = {
    "content-length and transfer-encoding": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "two different content-lengths": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
    ),
    "obsolete line folding": b"GET /items/a HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  folded\r\n\r\n",
    "a bad chunk size": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"
    ),
    "a space before the colon": b"GET /items/a HTTP/1.1\r\nHost : t\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
async def test_smuggling_attempts_get_400_and_a_closed_connection(name: str) -> None:
    async with serving() as port:
        answer = await exchange(port, SMUGGLING[name] + get("/items/smuggled-through"))
    assert statuses(answer) == [400]  # and nothing after it is served
    assert b"smuggled-through" not in answer


async def test_limits_431_and_413_without_reading_the_body() -> None:
    many = [f"X-H{i}: v" for i in range(150)]
    async with serving() as port:
        assert statuses(await exchange(port, get("/items/a", *many))) == [431]
        huge = "X-Big: " + "v" * (70 * 1024)
        assert statuses(await exchange(port, get("/items/a", huge))) == [431]
        # 7 MB announced, nothing sent: refused at once, not after a read timeout.
        answer = await exchange(
            port, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 7000000\r\n\r\n", within=2
        )
        assert statuses(answer) == [413]


async def test_slow_headers_slow_bodies_and_idle_connections_are_closed() -> None:
    limits = Limits(header_timeout=0.3, body_timeout=0.3, keep_alive_timeout=0.3)
    router = app_router()
    async with run_router(router) as app:
        server = NativeHttpServer("127.0.0.1", 0, HttpApp(router, app.engine), limits)
        sock = socket.create_server(("127.0.0.1", 0))
        sock.setblocking(False)
        await server.start(sock)
        try:
            for partial in (
                b"GET /items/a HTTP/1.1\r\nHost: t\r\n",  # headers never end (slowloris)
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc",  # body
                # A chunked body on any method stalls mid-chunk: the body deadline holds too.
                *(
                    b"%s /items/a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"a\r\nabc" % method
                    for method in (b"GET", b"DELETE", b"OPTIONS", b"HEAD")
                ),
                b"",  # connected, never asks
            ):
                with anyio.fail_after(3):  # closed by the server, well before this
                    answer = await exchange(server.port, partial, within=3)
                assert b"HTTP/1.1 200" not in answer
            # A kept-alive connection is closed once idle past its timeout.
            with anyio.fail_after(3):
                answer = await exchange(server.port, get("/items/a"), within=3)
            assert statuses(answer) == [200]
        finally:
            server.stop()
            await server.wait_stopped()


async def test_stop_finishes_requests_in_flight_and_closes_idle_connections() -> None:
    router = app_router()
    async with run_router(router, http="127.0.0.1:0", server="eventrouter") as app:
        port = app.engine.http_port
        assert port is not None and app.engine.http_server is not None
        idle = await anyio.connect_tcp("127.0.0.1", port)
        busy = await anyio.connect_tcp("127.0.0.1", port)
        await idle.send(get("/items/a"))
        first = await idle.receive()
        assert statuses(first) == [200]
        await busy.send(get("/slow"))
        await anyio.sleep(0.05)  # the slow request is in flight (a timed handler)
        app.engine.http_server.stop()
        with anyio.fail_after(3):
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                assert await idle.receive() == b""  # closed at once
            answer = b""
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    answer += await busy.receive()
        assert statuses(answer) == [200] and answer.endswith(b'{"slow":"done"}')
        assert b"connection: close" in answer
        with pytest.raises(OSError):
            await anyio.connect_tcp("127.0.0.1", port)  # no longer accepting


#: Requests whose answers both servers must agree on (status codes).
DIFFERENTIAL = {
    "get": get("/items/a", close=True),
    "unknown path": get("/nope", close=True),
    "wrong method": b"DELETE /items/a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "post json": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b'Content-Length: 12\r\nConnection: close\r\n\r\n{"text":"x"}'
    ),
    "post not json": (
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    ),
    "http/1.0": b"GET /items/a HTTP/1.0\r\n\r\n",
    "percent-encoded path": get("/items/a%20b", close=True),
    "query string": get("/items/a?x=1&y=2", close=True),
    "garbage": b"NOT HTTP AT ALL\r\n\r\n",
    **{f"smuggling: {name}": request for name, request in SMUGGLING.items()},
}


async def test_answers_agree_with_uvicorn_serving_the_same_app() -> None:
    answers: dict[str, dict[str, list[int]]] = {}
    for server in ("eventrouter", "uvicorn"):
        async with serving(server) as port:
            answers[server] = {
                name: statuses(await exchange(port, request))
                for name, request in DIFFERENTIAL.items()
            }
    differences = {
        name: (answers["eventrouter"][name], answers["uvicorn"][name])
        for name in DIFFERENTIAL
        if answers["eventrouter"][name] != answers["uvicorn"][name]
    }
    assert differences == {}, differences


async def test_a_client_that_leaves_cancels_its_handler() -> None:
    """A connection reset is a client gone: its handler is cancelled. (A client that only
    closes its sending side is still there to read the answer: see the half-close test.)"""
    global HANGING
    HANGING = Hanging()
    async with serving() as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(get("/hang"))
        with anyio.fail_after(5):
            await HANGING.started.wait()
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await stream.aclose()  # with linger 0: a reset
        with anyio.fail_after(5):
            await HANGING.ended.wait()  # cancelled, long before its 30 s timeout


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as files (``cryptography``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert), str(private)


@pytest.mark.parametrize("server", ["eventrouter", "uvicorn"])
async def test_https_and_a_unix_socket(server: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    engine = Engine(
        app_router(), state_dir=tmp_path / "a", http="127.0.0.1:0", server=server, tls=(cert, key)
    )
    async with engine:
        verify = ssl.create_default_context(cafile=cert)
        url = f"https://127.0.0.1:{engine.http_port}"
        async with httpx.AsyncClient(base_url=url, verify=verify) as client:
            response = await client.get("/items/secure")
    assert response.status_code == 200 and response.json() == {"item": "secure"}
    uds = str(tmp_path / "router.sock")
    async with Engine(app_router(), state_dir=tmp_path / "b", http=f"unix:{uds}", server=server):
        transport = httpx.AsyncHTTPTransport(uds=uds)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            response = await client.get("/items/local")
    assert response.status_code == 200 and response.json() == {"item": "local"}


async def test_a_bad_certificate_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    engine = Engine(
        app_router(),
        state_dir=tmp_path,
        http="127.0.0.1:0",
        server="eventrouter",
        tls=(str(tmp_path / "cert.pem"), str(tmp_path / "cert.pem")),
    )
    with pytest.raises(ConfigError, match="--ssl-certfile"):
        await engine.start()


async def test_stop_waits_for_a_request_that_came_after_an_idle_spell() -> None:
    router = app_router()
    async with run_router(router, http="127.0.0.1:0", server="eventrouter") as app:
        server = app.engine.http_server
        assert server is not None and app.engine.http_port is not None
        assert statuses(await exchange(app.engine.http_port, get("/items/a", close=True))) == [200]
        busy = await anyio.connect_tcp("127.0.0.1", app.engine.http_port)
        await busy.send(get("/slow"))
        await anyio.sleep(0.05)  # in flight: the handler sleeps 0.3 s
        server.stop()
        with anyio.fail_after(3):
            await server.wait_stopped()
        assert app.engine.metrics.function("slow").invocations == 1  # it ran to its end
        answer = b""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:  # already written in full: stopped means finished
                answer += await busy.receive()
        assert answer.endswith(b'{"slow":"done"}')


def own_server(app: Any) -> tuple[int, NativeHttpServer]:
    """The port and eventrouter's own server of a ``run_router`` block."""
    port, http = app.engine.http_port, app.engine.http_server
    assert port is not None and http is not None and http._native is not None
    assert http._native.server is not None
    return port, http._native


async def accepted(native: NativeHttpServer) -> Connection:
    """The one connection the server holds, once it has accepted it (polled: no event tells)."""
    assert native.server is not None
    with anyio.fail_after(10):
        while not native.server.connections:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    (connection,) = native.server.connections
    return connection


async def test_a_client_that_does_not_read_is_not_read_from_either() -> None:
    """Flow control: pipelined requests for big answers that the client does not read. The
    server stops reading the connection (the answers wait in the socket, not in memory) and
    serves them all once the client reads."""
    count = 100
    async with run_router(app_router(), http="127.0.0.1:0") as app:
        port, native = own_server(app)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            await stream.send(get("/big") * (count - 1) + get("/big", close=True))
            connection = await accepted(native)
            assert connection.transport is not None
            # Polled: nothing announces when the socket's buffers fill and the server pauses.
            with anyio.fail_after(10):
                while connection.transport.is_reading():  # type: ignore[attr-defined]  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            # Paused: writes wait for the client; the requests wait unanswered.
            assert not connection.writable.is_set()
            received = 0
            with anyio.fail_after(30):
                while True:
                    try:
                        received += len(await stream.receive(1 << 20))
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
    assert received > count * len(BIG)


async def test_a_connection_accepted_just_before_stop_gets_its_answer() -> None:
    """A client that connected but had not sent its request when the stop came (as during a
    rolling restart of workers) is answered, then closed, instead of being dropped."""
    async with run_router(app_router(), http="127.0.0.1:0") as app:
        port, native = own_server(app)
        fresh = await anyio.connect_tcp("127.0.0.1", port)
        async with fresh:
            await accepted(native)
            native.stop()
            await fresh.send(get("/items/a"))
            answer = b""
            with anyio.fail_after(5), contextlib.suppress(anyio.EndOfStream):
                while True:
                    answer += await fresh.receive()
    assert statuses(answer) == [200] and b"connection: close" in answer


async def test_requests_pipelined_before_a_malformed_one_are_answered_first() -> None:
    async with serving() as port:
        answer = await exchange(
            port, get("/items/a") + get("/slow") + b"GET /items/b HTTP/1.1\r\nHost t\r\n\r\n"
        )
    assert statuses(answer) == [200, 200, 400], answer
    assert answer.index(b'"item":"a"') < answer.index(b'"slow"') < answer.index(b" 400 ")
    assert answer.count(b"connection: close") == 1


async def test_a_client_that_half_closes_after_its_request_gets_its_answer() -> None:
    async with serving() as port:
        for request in (get("/slow"), get("/items/a") + get("/slow")):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            chunks = []
            async with stream:
                await stream.send(request)
                await stream.send_eof()  # as nc -N does: shutdown(SHUT_WR)
                with anyio.fail_after(5):
                    while True:
                        try:
                            chunks.append(await stream.receive())
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            break
            answer = b"".join(chunks)
            assert statuses(answer) == [200] * request.count(b"GET "), answer
            assert b'"slow":"done"' in answer


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"HEAD /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",  # 404
        b"HEAD /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",  # 405
        b"HEAD /items/a HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",  # 431
    ],
)
async def test_error_answers_to_head_have_no_body(request_bytes: bytes) -> None:
    async with serving() as port:
        answer = await exchange(port, request_bytes)
    _, _, body = answer.partition(b"\r\n\r\n")
    assert statuses(answer)[0] >= 400 and body == b"", answer


async def test_router_stopped_counts_the_http_requests_it_let_finish(
    log_records: Any,
) -> None:
    router = app_router()
    async with run_router(router, http="127.0.0.1:0") as app:
        port, http = app.engine.http_port, app.engine.http_server
        assert port is not None and http is not None
        streams = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(3)]
        for stream in streams:
            await stream.send(get("/slow"))
        with anyio.fail_after(10):
            while http.in_flight < 3:  # noqa: ASYNC110 - no event tells
                await anyio.sleep(0.01)
        await app.engine.shutdown(5.0)
        for stream in streams:
            assert b'"slow":"done"' in await stream.receive()
            await stream.aclose()
    (stopped,) = [r for r in log_records() if r["event"] == "router stopped"]
    assert stopped["finished_in_flight"] == 3


@pytest.mark.parametrize("server", ["eventrouter", "uvicorn"])
async def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(server: str) -> None:
    """A Content-Length over 6 MB is answered 413 at once, on either server: the client
    need not send (nor the server read) 7 MB to hear it."""
    async with serving(server) as port:
        stream = await anyio.connect_tcp("127.0.0.1", port)
        async with stream:
            await stream.send(
                b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Content-Length: 7000000\r\n\r\n{"
            )
            with anyio.fail_after(5):
                answer = await stream.receive()
    assert statuses(answer) == [413], answer
