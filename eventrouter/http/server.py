"""The HTTP server inside the engine's task group (uvicorn, or eventrouter's own in
``http/native.py``): one event loop for HTTP and every other source."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import structlog

from eventrouter.errors import ConfigError, SourceError
from eventrouter.http import observe
from eventrouter.http.app import HttpApp
from eventrouter.http.asgi import JSON, Receive, Scope, Send, respond
from eventrouter.http.native import NativeHttpServer

if TYPE_CHECKING:
    from eventrouter.runtime.interface import Runtime

log = structlog.get_logger("eventrouter.http")


def parse_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"`` → ``("127.0.0.1", 8000)``; port 0 picks a free one."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--http {address!r} must be HOST:PORT, e.g. 127.0.0.1:8000")
    return host.strip("[]") or "0.0.0.0", int(port)


def _uvicorn_server(config: Any) -> Any:
    """uvicorn (imported only for ``--server uvicorn``: ~60 ms of every start otherwise)
    that leaves the signals to the engine and says when it is listening."""
    import uvicorn

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.listening = anyio.Event()

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            self.listening.set()

    return Server(config)


def listen_on(host: str, port: int, uds: str | None = None) -> socket.socket:
    """A listening, non-blocking socket on ``host:port`` (port 0: a free one), or on the
    Unix socket ``uds`` (a stale socket file of a router that is gone is replaced)."""
    where: Any
    if uds is not None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(uds).st_mode):
                os.unlink(uds)  # left by a router that is gone
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        where, shown = uds, f"unix:{uds}"
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        where, shown = (host, port), f"{host}:{port}"
    try:
        sock.bind(where)
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EADDRINUSE:
            hint = (
                ": another program listens there; pick another port with --http HOST:PORT "
                "or EVENTROUTER_HTTP (port 0 picks a free one)"
            )
        raise SourceError(f"cannot listen on {shown}: {exc.strerror or exc}{hint}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


#: The HTTP servers the engine can run: eventrouter's own (``http/native.py``) or uvicorn.
SERVERS = ("eventrouter", "uvicorn")


class HttpServer:
    """Serves the engine's :class:`HttpApp` on ``address`` with eventrouter's own server
    (``http/native.py``), or with uvicorn (``server="uvicorn"``)."""

    def __init__(
        self,
        runtime: Runtime,
        address: str,
        grace: float,
        app: Any = None,
        server: str = "eventrouter",
        tls: tuple[str, str] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        if server not in SERVERS:
            raise ConfigError(f"--server {server!r} must be one of {', '.join(SERVERS)}")
        #: ``unix:PATH``: a Unix domain socket instead of TCP (``--uds``).
        self.uds = address[len("unix:") :] if address.startswith("unix:") else None
        if self.uds is not None:
            self.host, self.port = "unix", 0
        else:
            self.host, self.port = parse_address(address)
        #: (certificate file, key file): HTTPS (``--ssl-certfile`` / ``--ssl-keyfile``).
        self.tls = tls
        self.app = app if app is not None else HttpApp(runtime.router, runtime)
        self.kind = server
        self._grace = grace
        self._server: Any = None
        self._native: NativeHttpServer | None = None
        self._done = anyio.Event()
        #: A listening socket made by someone else (the supervisor of ``--workers``).
        self._sock = sock
        if sock is not None and sock.family != socket.AF_UNIX:
            self.port = sock.getsockname()[1]

    @property
    def url(self) -> str:
        if self.uds is not None:
            return f"{'https' if self.tls else 'http'}+unix://{self.uds}"
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        sock = listen_on(self.host, self.port, self.uds)
        if self.uds is None:
            self.port = sock.getsockname()[1]
        return sock

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(*self.tls)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--ssl-certfile / --ssl-keyfile: {exc}") from exc
        return context

    async def start(self, task_group: anyio.abc.TaskGroup) -> None:
        context = self._tls_context()
        sock = self._sock if self._sock is not None else self._bind()
        if self.kind == "eventrouter":
            self._native = NativeHttpServer(self.host, self.port, self.app)
            await self._native.start(sock, context)
            task_group.start_soon(self._native.hold)
        else:
            await self._start_uvicorn(task_group, sock)
        if isinstance(self.app, HttpApp):
            routes = len(self.app.static) + len(self.app.dynamic)
            url = self.url
            log.info(
                "http listening",
                url=url,
                routes=routes,
                server=self.kind,
                invoke_api=f"{url}/2015-03-31/functions/<name>/invocations",
                dashboard=f"{url}/dashboard",
                metrics=f"{url}/metrics",
            )
        else:
            log.info("metrics listening", url=f"{self.url}/metrics")

    async def _start_uvicorn(self, task_group: anyio.abc.TaskGroup, sock: socket.socket) -> None:
        import uvicorn

        config: Any = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(max(1, self._grace)),
            backlog=2048,
            ssl_certfile=self.tls[0] if self.tls else None,
            ssl_keyfile=self.tls[1] if self.tls else None,
        )
        self._server = _uvicorn_server(config)
        task_group.start_soon(self._serve, sock)
        await self._server.listening.wait()

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            await self._server.serve(sockets=[sock])
        finally:
            self._done.set()
            sock.close()

    def stop(self) -> None:
        """Stop accepting connections; requests in flight finish, idle keep-alive
        connections are closed."""
        if self._native is not None:
            self._native.stop()
        if self._server is not None:
            self._server.should_exit = True

    @property
    def in_flight(self) -> int:
        """HTTP requests being served now (shutdown reports those it let finish)."""
        if self._native is not None:
            return self._native.in_flight
        if self._server is not None:
            return len(self._server.server_state.tasks)
        return 0

    async def wait_stopped(self) -> None:
        if self._native is not None:
            await self._native.wait_stopped()
        if self._server is not None:
            await self._done.wait()


class ObserveApp:
    """``--metrics``: the ASGI app of ``/metrics`` and the dashboard alone (no permissions:
    whoever reaches its address may read them)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in observe.PATHS and scope["method"] in ("GET", "HEAD"):
            await observe.handle(self.runtime, path, scope, receive, send)
        elif path == "/":
            await respond(send, 307, b"", [(b"location", b"/dashboard")])
        else:
            await respond(send, 404, b'{"errorType":"NotFound"}', [(b"content-type", JSON)])
