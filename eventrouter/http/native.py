"""eventrouter's own HTTP/1.1 server: httptools' parser on asyncio (uvloop), straight to the
router's application.

One ``Connection`` (an ``asyncio.Protocol``) per client. Requests are parsed by httptools'
callbacks and run one at a time per connection, in order (pipelined requests wait their
turn, so responses go out in the order asked). The application is the same ``HttpApp`` that
``router.asgi()`` serves, called with a lean ASGI scope: one implementation of HTTP's
meaning, two transports (this one and uvicorn, ``--server uvicorn``).

Strict where HTTP allows ambiguity: httptools (llhttp) refuses conflicting
``Content-Length`` headers, ``Transfer-Encoding`` with ``Content-Length``, obsolete line
folding and bad chunk sizes (400, then the connection is closed); the request line and headers
may not pass ``Limits.max_header_bytes`` nor ``Limits.max_headers`` (431); a body over the
payload limit is not read: the request goes to the app at once, marked, and the app answers
413 in its own terms (then the connection closes).
Timeouts close connections that send their headers too slowly, bodies too slowly, or stay
idle between requests too long. Small complete responses are corked (written together at the
end of the loop's iteration), large ones written without a copy; a client that does not read
is not read from (flow control). Shutdown stops accepting, closes idle connections at once
and lets requests in flight finish within the grace period. The wire format itself (limits,
framing) is in ``http/wire.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import httptools
import structlog

from eventrouter.events import new_request_id
from eventrouter.http.asgi import TOO_LARGE
from eventrouter.http.streams import StreamAborted
from eventrouter.http.wire import (
    ERROR_TYPES,
    Limits,
    Request,
    ResponseFrame,
    send_error,
    status_line,
)

log = structlog.get_logger("eventrouter.http")
#: A complete response up to this size waits for the end of the loop's iteration
#: (``Server.cork``); larger ones and streamed pieces are written at once.
CORK_BYTES = 64 * 1024
#: Pipelined requests waiting on a connection before it is no longer read from.
MAX_PIPELINED = 16
App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Server:
    """What the connections of one listening socket share."""

    def __init__(self, app: App, host: str, port: int, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.server_address = (host, port)
        self.connections: set[Connection] = set()
        self.closing = False
        self.scheme = "http"
        self.idle_event = asyncio.Event()
        limits = self.limits
        shortest = min(limits.header_timeout, limits.body_timeout, limits.keep_alive_timeout)
        #: Timeouts are checked this often: they fire up to this much late.
        self.sweep_interval = min(1.0, max(0.02, shortest / 5))
        self.sweeper: asyncio.TimerHandle | None = None
        #: Connections with responses held back until the end of the loop's iteration.
        self.corked: list[Connection] = []
        self.uncork_scheduled = False

    def factory(self) -> Connection:
        return Connection(self)

    def cork(self, connection: Connection, data: bytes) -> None:
        """Hold a small, complete response until the loop's current callbacks have run, then
        write every connection's at once (:meth:`uncork_all`): the client's side is woken
        once for many responses instead of once each (on loopback, where the sender pays
        for the receiver's wake-up, that is a tenth of a request's cost)."""
        if connection.corked is None:
            connection.corked = [data]
            self.corked.append(connection)
        else:
            connection.corked.append(data)
        if not self.uncork_scheduled:
            self.uncork_scheduled = True
            asyncio.get_running_loop().call_soon(self.uncork_all)

    def uncork_all(self) -> None:
        self.uncork_scheduled = False
        connections, self.corked = self.corked, []
        for connection in connections:
            connection.uncork()

    def sweep(self) -> None:
        """Close the connections whose timeout passed; again in ``sweep_interval``."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for connection in list(self.connections):
            if connection.deadline and connection.deadline <= now:
                connection.timed_out()
        if not (self.closing and not self.connections):
            self.sweeper = loop.call_later(self.sweep_interval, self.sweep)


class Connection(asyncio.Protocol):
    """One client connection: parse, run in order, answer, keep alive or close."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.limits = server.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.pending: deque[Request] = deque()
        self.current: Request | None = None  # being parsed
        #: The connection's task: runs its requests in order, then waits for the next.
        self.running: asyncio.Task[None] | None = None
        #: A request is being served (else the task waits on ``wakeup``).
        self.busy = False
        #: Requests answered on this connection.
        self.served = 0
        self.wakeup: asyncio.Future[None] | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.body_size = 0
        #: When the running timeout (header, body or keep-alive) expires, on the loop's clock;
        #: 0: none. One sweep a server checks them all (``Server.sweep``): no timer per request.
        self.deadline = 0.0
        self.closed = False
        self.writable = asyncio.Event()
        self.writable.set()
        #: Responses written at the end of the loop's iteration (``Server.cork``).
        self.corked: list[bytes] | None = None
        #: Reading is paused: the client does not read our answers, or pipelined too much.
        self.reading_paused = False
        #: Set when the client is gone (``receive`` then answers ``http.disconnect``).
        self.lost = asyncio.Event()
        #: A malformed request behind requests not yet answered: (status, reason), answered
        #: once they are, then the connection closes.
        self.refusal: tuple[int, bytes] | None = None
        #: The client closed its side after sending (``shutdown(SHUT_WR)``): answer what it
        #: sent, then close.
        self.read_eof = False
        #: The answer of the request being served has begun to go out.
        self.responding = False

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        server = self.server
        if server.closing or len(server.connections) >= self.limits.max_connections:
            self.transport.close()  # type: ignore[union-attr]
            self.closed = True
            return
        server.connections.add(self)
        server.idle_event.clear()  # set again when the last connection closes
        peer = transport.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if isinstance(peer, tuple) else None
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm(self.limits.keep_alive_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._disarm()
        self.writable.set()
        self.lost.set()
        if self.running is not None and not self.running.done():
            self.running.cancel()  # the client left: its handler is cancelled
        if not self.server.connections:
            self.server.idle_event.set()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, b"upgrades are not supported")
        except httptools.HttpParserError as exc:
            if self.closed:
                return
            status = 431 if self.header_bytes > self.limits.max_header_bytes else 400
            if status == 400 and "too large" in str(exc).lower():
                status = 413
            self._refuse(status, str(exc).encode("latin-1", "replace"))

    def eof_received(self) -> bool | None:
        """The client closed its sending side. Before the answer has begun, that is a
        half-close (``nc -N``, ``shutdown(SHUT_WR)``): the connection stays open to answer
        what it sent (``True`` keeps the transport writable). Once an answer is under way
        (a stream), the client is gone: close, and its handler is cancelled."""
        if (self.busy or self.pending) and not self.responding:
            self.read_eof = True
            return True
        return None

    def pause_writing(self) -> None:
        """The client reads slower than we write: stop reading its requests too."""
        self.writable.clear()
        self._pause_reading()

    def resume_writing(self) -> None:
        self.writable.set()
        if len(self.pending) < MAX_PIPELINED:
            self._resume_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.closed and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.closed and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    # -- httptools' callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.header_bytes = 0
        self.body_size = 0
        self._arm(self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.limits.max_header_bytes:
            raise httptools.HttpParserError("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        limits = self.limits
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > limits.max_header_bytes or len(self.headers) >= limits.max_headers:
            self.header_bytes = limits.max_header_bytes + 1
            raise httptools.HttpParserError("request headers too large")
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        # Any: httptools' stubs say bytes where a URL without a query has None (and compiled
        # code checks what the stubs say).
        parsed: Any = httptools.parse_url(self.url)
        raw_path: bytes = parsed.path
        query: bytes | None = parsed.query
        path = raw_path.decode("latin-1")
        if b"%" in raw_path:
            path = unquote(path)
        server = self.server
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": parser.get_http_version(),
            "method": parser.get_method().decode("ascii"),
            "scheme": server.scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query or b"",
            "root_path": "",
            "headers": self.headers,
            "client": self.client,
            "server": server.server_address,
        }
        request = Request(scope)
        request.keep_alive = parser.should_keep_alive()
        length = None
        for name, value in self.headers:
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"expect" and value.lower() == b"100-continue":
                request.expect_continue = True
        self.current = request
        if length is not None and length > self.limits.max_body:
            self._too_large(request)
            return
        # Any method may carry a body (chunked on a GET too): every request gets the body
        # deadline; one without a body completes now and disarms it.
        self._arm(self.limits.body_timeout)
        if request.expect_continue and not self.pending and not self.busy:
            assert self.transport is not None
            self.uncork()
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.expect_continue = False

    def on_body(self, body: bytes) -> None:
        request = self.current
        assert request is not None
        if request.too_large:
            return  # dropped: the app has answered, or will, and the connection closes
        self.body_size += len(body)
        if self.body_size > self.limits.max_body:
            self._too_large(request)
            return
        request.body.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        assert request is not None
        self.current = None
        self._disarm()
        if not request.too_large:  # else already handed over
            self._dispatch(request)

    def _too_large(self, request: Request) -> None:
        """A body over the limit: run the request now, without it (the app answers 413 in
        its own terms: the Invoke API's ``RequestTooLargeException``...), then close."""
        request.too_large = True
        request.body = []
        request.keep_alive = False
        request.expect_continue = False
        self._dispatch(request)

    def _dispatch(self, request: Request) -> None:
        self.pending.append(request)
        if len(self.pending) >= MAX_PIPELINED:
            self._pause_reading()  # enough waiting: read more once they are answered
        if self.running is None:
            self.running = self.loop.create_task(self._run())
        elif self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    # -- running requests in order ----------------------------------------------------------

    async def _run(self) -> None:
        """Serve the connection's requests in order for as long as it is open (one task per
        connection, not per request)."""
        pending = self.pending
        while not self.closed:
            if not pending:
                if self.refusal is not None:
                    self._refuse(*self.refusal)
                    return
                if self.read_eof:
                    self._close()
                    return
                self._arm(self.limits.keep_alive_timeout)
                self.wakeup = self.loop.create_future()
                await self.wakeup
                continue
            request = pending.popleft()
            if self.reading_paused and len(pending) < MAX_PIPELINED and self.writable.is_set():
                self._resume_reading()
            if request.expect_continue and self.transport is not None:
                self.uncork()
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.busy = True
            self.responding = False
            try:
                await self._serve(request)
            finally:
                self.busy = False
                self.responding = False
                self.served += 1
            if not request.keep_alive or self.server.closing:
                self._close()

    async def _serve(self, request: Request) -> None:
        """Run the app for one request; write its response as it comes."""
        body = b"".join(request.body)
        head = request.scope["method"] == "HEAD"
        response = ResponseFrame()

        async def receive() -> dict[str, Any]:
            if not response.body_given:
                response.body_given = True
                if request.too_large:
                    return {"type": "http.request", "body": b"", TOO_LARGE: True}
                return {"type": "http.request", "body": body, "more_body": False}
            await self.lost.wait()  # the handler is cancelled when the client leaves
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            transport = self.transport
            if transport is None or self.closed:
                return
            kind = message["type"]
            if kind == "http.response.start":
                response.start = message
            elif kind == "http.response.body":
                self.responding = True
                if not self.writable.is_set():
                    await self.writable.wait()  # the client reads slower than we write
                keep = request.keep_alive and not self.server.closing
                pieces = response.frame(message, head, keep)
                size = sum(map(len, pieces))
                if size <= CORK_BYTES:
                    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    if response.finished:
                        self.server.cork(self, data)
                        return
                    self.uncork()
                    transport.write(data)
                else:  # a large body: written as it is, without a copy
                    self.uncork()
                    transport.writelines(pieces)

        try:
            await self.server.app(request.scope, receive, send)
        except asyncio.CancelledError:
            raise
        except StreamAborted:  # the body is left unfinished: the client sees it cut short
            request.keep_alive = False
            return
        except Exception:
            log.exception("http application failed", path=request.scope["path"])
            request.keep_alive = False
            if not response.written:
                response.start = None
                await send_error(send, 500)
            return
        if not response.written:  # the app returned without an answer
            request.keep_alive = False
            await send_error(send, 500)
        elif not response.finished:  # nor the end of its body: close to say so
            request.keep_alive = False

    # -- closing ---------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Requests of this connection being served or waiting their turn."""
        return int(self.busy) + len(self.pending)

    def _refuse(self, status: int, reason: bytes) -> None:
        """Answer ``status`` and close (a request we will not run); after the requests before
        it, if some are still to be answered (pipelining keeps responses in order)."""
        if self.closed or self.transport is None:
            return
        if self.busy or self.pending:
            self.refusal = (status, reason)
            self._pause_reading()
            return
        kind = ERROR_TYPES.get(status, b"BadRequest")
        message = reason.replace(b'"', b"'").replace(b"\\", b"/")
        request_id = new_request_id().encode()
        body = b'{"errorType":"%s","errorMessage":"%s","requestId":"%s"}' % (
            kind,
            message,
            request_id,
        )
        try:
            head = self.parser.get_method() == b"HEAD"
        except httptools.HttpParserError:  # the request line itself was not understood
            head = False
        self.uncork()
        self.transport.write(
            status_line(status)
            + b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
            + b"x-amzn-requestid: %s\r\nconnection: close\r\n\r\n" % request_id
            + (b"" if head else body)
        )
        self._close()

    def uncork(self) -> None:
        """Write the responses held back (before anything else is written, or closing)."""
        pieces = self.corked
        if pieces is None:
            return
        self.corked = None
        if not self.closed and self.transport is not None:
            self.transport.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))

    def _close(self) -> None:
        self.uncork()
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
        self._disarm()
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)  # the task ends

    def _arm(self, seconds: float) -> None:
        self.deadline = self.loop.time() + seconds

    def _disarm(self) -> None:
        self.deadline = 0.0

    def timed_out(self) -> None:
        self.deadline = 0.0
        if not self.busy and not self.pending:
            self._close()

    def close_if_idle(self) -> None:
        """At shutdown: close a keep-alive connection between requests now. One accepted but
        not yet sent its first request may have it on the way (a client that just connected):
        it gets a short while to arrive, is answered, then the connection closes."""
        if self.busy or self.pending or self.current is not None:
            return
        if self.served:
            self._close()
        else:
            self._arm(min(1.0, self.limits.header_timeout))


class NativeHttpServer:
    """Serves an ASGI app (the engine's :class:`HttpApp`) on ``address`` with :class:`Server`;
    the lifecycle of :class:`~eventrouter.http.server.HttpServer`, without uvicorn."""

    def __init__(self, host: str, port: int, app: App, limits: Limits | None = None) -> None:
        self.host, self.port = host, port
        self.app = app
        self.limits = limits or Limits()
        self.server: Server | None = None
        self._listener: asyncio.AbstractServer | None = None
        self._stopped = asyncio.Event()

    async def start(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """Serve on a bound, listening socket (TCP or Unix), over TLS with ``tls``."""
        if sock.family != socket.AF_UNIX:
            self.port = sock.getsockname()[1]
        self.server = Server(self.app, self.host, self.port, self.limits)
        self.server.scheme = "https" if tls is not None else "http"
        loop = asyncio.get_running_loop()
        self.server.sweeper = loop.call_later(self.server.sweep_interval, self.server.sweep)
        if sock.family == socket.AF_UNIX:
            self._listener = await loop.create_unix_server(
                self.server.factory, sock=sock, backlog=2048, ssl=tls
            )
        else:
            self._listener = await loop.create_server(
                self.server.factory, sock=sock, backlog=2048, ssl=tls
            )

    async def hold(self) -> None:
        """Run until cancelled (the engine's task group), then drop every connection."""
        try:
            await asyncio.Event().wait()
        finally:
            self.stop()
            if self.server is not None:
                if self.server.sweeper is not None:
                    self.server.sweeper.cancel()
                for connection in list(self.server.connections):
                    connection._close()

    def stop(self) -> None:
        """Stop accepting; close idle keep-alive connections now, the rest after their
        response."""
        server = self.server
        if server is None or server.closing:
            return
        server.closing = True
        if self._listener is not None:
            self._listener.close()
        for connection in list(server.connections):
            connection.close_if_idle()
        if not server.connections:
            server.idle_event.set()

    @property
    def in_flight(self) -> int:
        """Requests being served or waiting their turn, on every connection."""
        server = self.server
        return 0 if server is None else sum(c.in_flight for c in server.connections)

    async def wait_stopped(self) -> None:
        """Wait until every connection is closed (after :meth:`stop`)."""
        if self.server is not None and self.server.connections:
            await self.server.idle_event.wait()
