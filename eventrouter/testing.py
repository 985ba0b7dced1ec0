"""Run a router in-process inside your own tests.

>>> async def test_charge(tmp_path):
...     async with run_router(router, state_dir=tmp_path) as app:
...         assert (await app.invoke("charge", {"amount": 3}))["ok"]
...         await app.invoke_async("charge", {"amount": -1})
...         record = await app.next_record("charge", "on_failure")
...         assert record["requestContext"]["condition"] == "RetriesExhausted"

For tests that are not async, :class:`TestRouter` runs the router on a thread::

    with TestRouter(router) as app:
        app.invoke("charge", {"amount": 3})
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import msgspec

from eventrouter.destinations.directory import to_directory
from eventrouter.fakes import MemoryQueue, MemoryStream
from eventrouter.http.app import HttpApp
from eventrouter.router import Router
from eventrouter.runtime.engine import Engine
from eventrouter.runtime.environments.pool import Pool
from eventrouter.sources.shards.memory import MemoryKinesis

__all__ = [
    "Delivery",
    "MemoryKinesis",
    "MemoryQueue",
    "MemoryStream",
    "RouterUnderTest",
    "TestRouter",
    "run_router",
]


class Delivery(msgspec.Struct, frozen=True):
    """A record that reached a destination: function, ``on_success``/``on_failure``, record."""

    function: str
    kind: str
    record: Any


class RouterUnderTest:
    """A running router with helpers to invoke it and watch its destinations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.deliveries: list[Delivery] = []
        #: Deliveries a destination refused, with the error (they are retried later).
        self.failed_deliveries: list[tuple[Delivery, BaseException]] = []
        self._returned: set[int] = set()
        self._changed = anyio.Event()
        engine.delivery_listeners.append(self._on_delivery)
        #: Invocations that ran (any outcome), per function.
        self.invocations: Counter[str] = Counter()
        #: Set at the next invocation; made only while a test waits for one (an event per
        #: invocation would cost every invocation of the benchmarks that run through here).
        self._invoked: anyio.Event | None = None
        engine.invoker.concluded.append(self._on_invocation)

    def _on_invocation(self, function: str, status: Any) -> None:
        self.invocations[function] += 1
        if self._invoked is not None:
            self._invoked.set()
            self._invoked = None

    async def wait_invocations(self, function: str, count: int = 1, timeout: float = 30.0) -> int:
        """Wait until ``function`` has run ``count`` times (any outcome) since the router
        started: how a test waits for an event-bus rule's or a schedule's target, which has no
        caller to answer. Returns how many times it ran."""
        try:
            with anyio.fail_after(timeout):
                while self.invocations[function] < count:
                    if self._invoked is None:
                        self._invoked = anyio.Event()
                    await self._invoked.wait()
        except TimeoutError:
            ran = dict(self.invocations) or "nothing"
            raise TimeoutError(
                f"{function} ran {self.invocations[function]} of {count} time(s) within "
                f"{timeout:g} s; what ran: {ran}"
            ) from None
        return self.invocations[function]

    def client(self, **options: Any) -> Any:
        """An ``httpx.AsyncClient`` on the router's ASGI app, in process (no server, no
        port): ``async with app.client() as client: await client.post("/orders", json=...)``.
        (``server_client()`` goes through the real HTTP server instead.)"""
        httpx = _httpx()
        transport = httpx.ASGITransport(app=HttpApp(self.engine.router, self.engine))
        return httpx.AsyncClient(transport=transport, base_url="http://router", **options)

    def server_client(self, **options: Any) -> Any:
        """An ``httpx.AsyncClient`` on the router's own HTTP server (``http=...``)."""
        return _httpx().AsyncClient(base_url=self.url, **options)

    def _on_delivery(
        self, function: str, kind: str, record: bytes, error: BaseException | None
    ) -> None:
        if error is None:
            self.deliveries.append(Delivery(function, kind, msgspec.json.decode(record)))
        else:
            self.failed_deliveries.append(
                (Delivery(function, kind, msgspec.json.decode(record)), error)
            )
        self._changed.set()

    def directory(self, path: str) -> Path:
        """Where ``to_directory(path)`` writes in this test (relative paths are kept under
        the test's temporary folder)."""
        return to_directory(path).folder(self.engine)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of the HTTP server (``run_router(..., http=...)``)."""
        server = self.engine.http_server
        if server is None:
            raise RuntimeError("the router runs without HTTP: pass http='127.0.0.1:0'")
        return f"http://{server.host}:{server.port}"

    def environments(self, name: str) -> list[int]:
        """The pids of function ``name``'s execution environments (``isolation="process"``)."""
        return self._pool(name).pids

    async def wait_environments(self, name: str, count: int) -> list[int]:
        """Wait until function ``name`` has ``count`` execution environments; their pids."""
        pool = self._pool(name)
        await pool.wait_for(lambda p: len(p.environments) == count)
        return pool.pids

    def _pool(self, name: str) -> Pool:
        pool = self.engine.state(name).pool
        if pool is None:
            raise ValueError(f"function {name!r} runs inline: it has no environments")
        return pool

    async def invoke(self, name: str, payload: Any = None) -> Any:
        """Invoke synchronously; returns the result or raises the invocation's error."""
        return await self.engine.invoke(name, payload)

    async def invoke_async(self, name: str, payload: Any = None) -> str:
        """Queue an asynchronous invocation; returns its request id."""
        return await self.engine.invoke_async(name, payload)

    def records(self, function: str | None = None, kind: str | None = None) -> list[Any]:
        """Every record delivered so far for ``function`` / ``kind``."""
        return [d.record for d in self.deliveries if _matches(d, function, kind)]

    async def wait_records(
        self,
        count: int,
        function: str | None = None,
        kind: str | None = None,
        timeout: float = 30.0,
    ) -> list[Any]:
        """Wait until ``count`` records for ``function`` / ``kind`` were delivered."""
        try:
            with anyio.fail_after(timeout):
                while len(found := self.records(function, kind)) < count:
                    await self._wait_change()
        except TimeoutError:
            raise TimeoutError(self._waited(f"{count} records", function, kind, timeout)) from None
        return found

    async def next_record(
        self, function: str | None = None, kind: str | None = None, timeout: float = 30.0
    ) -> Any:
        """The oldest delivered record (for ``function`` / ``kind``) this call has not returned."""
        try:
            with anyio.fail_after(timeout):
                while True:
                    for i, delivery in enumerate(self.deliveries):
                        if i not in self._returned and _matches(delivery, function, kind):
                            self._returned.add(i)
                            return delivery.record
                    await self._wait_change()
        except TimeoutError:
            raise TimeoutError(self._waited("a record", function, kind, timeout)) from None

    def _waited(self, what: str, function: str | None, kind: str | None, timeout: float) -> str:
        """Why a wait for a destination record timed out, in words a test author can act on."""
        target = f"{function or 'any function'}'s {kind or 'on_success/on_failure'} destination"
        arrived = sorted({f"{d.function}:{d.kind}" for d in self.deliveries}) or ["nothing"]
        text = (
            f"no {what} reached {target} within {timeout:g} s; "
            f"arrived meanwhile: {', '.join(arrived)}"
        )
        spec = self.engine.router.functions.get(function) if function else None
        if spec is not None and kind in (None, "on_failure"):
            s = spec.settings
            wait = sum(s.retry_delays[: s.max_retries]) if s.max_retries else 0
            text += (
                f"; {function} retries a failed asynchronous event {s.max_retries} time(s) "
                f"after retry_delays={s.retry_delays!r} (about {wait:g} s before on_failure): "
                "pass short retry_delays or max_retries=0 in tests"
            )
        if self.failed_deliveries:
            delivery, error = self.failed_deliveries[-1]
            text += f"; a delivery to {delivery.function}:{delivery.kind} failed: {error!r}"
        return text

    async def wait_failed_delivery(self, timeout: float = 30.0) -> tuple[Delivery, BaseException]:
        """Wait for the first delivery a destination refused."""
        with anyio.fail_after(timeout):
            while not self.failed_deliveries:
                await self._wait_change()
        return self.failed_deliveries[0]

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until the router's queues hold no event that is due or running."""
        with anyio.fail_after(timeout):
            while True:
                await self.engine.store.flush()
                if self.engine.policy.in_flight == 0 and await self._pending() == 0:
                    return
                await anyio.sleep(0.01)

    async def _pending(self) -> int:
        n = 0
        for queue in self.engine.policy.by_queue:
            n += await self.engine.store.count(queue)
        return n

    async def queue_messages(self, name: str, limit: int = 1000) -> list[Any]:
        """Take the messages waiting in the embedded queue ``name`` (decoded)."""
        return [msgspec.json.decode(ev.payload) for ev in await self.engine.store.pop(name, limit)]

    async def _wait_change(self) -> None:
        self._changed = anyio.Event()
        await self._changed.wait()


def _matches(d: Delivery, function: str | None, kind: str | None) -> bool:
    return (function is None or d.function == function) and (kind is None or d.kind == kind)


@asynccontextmanager
async def run_router(
    router: Router,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    grace: float = 5.0,
    http: str | None = None,
    server: str = "eventrouter",
) -> AsyncIterator[RouterUnderTest]:
    """Run ``router`` in this event loop for the duration of the block.

    ``state_dir`` defaults to a fresh temporary directory, removed afterwards. A
    ``to_directory`` destination with a relative path writes under a temporary folder too
    (``app.directory("out/ok")`` says where), so tests never write into the project. With
    ``http="127.0.0.1:0"`` the routes and the Invoke API are served on a free port:
    ``app.url`` (by eventrouter's own HTTP server; ``server="uvicorn"``: by uvicorn).
    """
    with tempfile.TemporaryDirectory(prefix="eventrouter-") as tmp:
        engine = Engine(router, state_dir=state_dir or tmp, http=http, grace=grace, server=server)
        engine.directory_root = os.path.join(tmp, "files")
        await engine.start()
        try:
            yield RouterUnderTest(engine)
        finally:
            await engine.shutdown(grace=grace)


class TestRouter:
    """The synchronous twin of :func:`run_router`, for plain ``def test_...`` functions."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        router: Router,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        http: str | None = None,
    ) -> None:
        self._router = router
        self._state_dir = state_dir
        self._http = http
        self._portal_cm: Any = None
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._cm: Any = None
        self.app: RouterUnderTest | None = None

    def __enter__(self) -> TestRouter:
        self._portal_cm = anyio.from_thread.start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        # Entered and left in one task of the portal, as anyio's cancel scopes require.
        self._cm = self._portal.wrap_async_context_manager(
            run_router(self._router, state_dir=self._state_dir, http=self._http)
        )
        self.app = self._cm.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._cm.__exit__(*exc_info)
        finally:
            self._portal_cm.__exit__(*exc_info)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._portal is not None and self.app is not None, "use TestRouter in a with block"
        return self._portal.call(fn, *args)

    @property
    def url(self) -> str:
        assert self.app is not None, "use TestRouter in a with block"
        return self.app.url

    @property
    def engine(self) -> Engine:
        assert self.app is not None, "use TestRouter in a with block"
        return self.app.engine

    def invoke(self, name: str, payload: Any = None) -> Any:
        return self._call(self.app.invoke if self.app else None, name, payload)  # type: ignore[arg-type]

    def invoke_async(self, name: str, payload: Any = None) -> str:
        return str(self._call(self.app.invoke_async if self.app else None, name, payload))  # type: ignore[arg-type]

    def next_record(
        self, function: str | None = None, kind: str | None = None, timeout: float = 30.0
    ) -> Any:
        return self._call(self.app.next_record if self.app else None, function, kind, timeout)  # type: ignore[arg-type]

    def drain(self, timeout: float = 30.0) -> None:
        self._call(self.app.drain if self.app else None, timeout)  # type: ignore[arg-type]

    def directory(self, path: str) -> Path:
        """Where ``to_directory(path)`` writes in this test (as ``RouterUnderTest``'s)."""
        assert self.app is not None, "use TestRouter in a with block"
        return self.app.directory(path)

    def wait_invocations(self, function: str, count: int = 1, timeout: float = 30.0) -> int:
        """Wait until ``function`` ran ``count`` times (a rule's or a schedule's target)."""
        assert self.app is not None, "use TestRouter in a with block"
        return int(self._call(self.app.wait_invocations, function, count, timeout))

    def client(self, **options: Any) -> Any:
        """An ``httpx.Client`` on the router's ASGI app, in process (no server, no port)::

        with TestRouter(router) as app, app.client() as client:
            assert client.post("/orders", json=order).status_code == 200
        """
        assert self._portal is not None and self.app is not None, "use TestRouter in a with block"
        httpx = _httpx()
        app = HttpApp(self.app.engine.router, self.app.engine)
        transport = _PortalTransport(self._portal, httpx.ASGITransport(app=app))
        return httpx.Client(transport=transport, base_url="http://router", **options)

    def server_client(self, **options: Any) -> Any:
        """An ``httpx.Client`` on the router's own HTTP server (``TestRouter(..., http=...)``)."""
        return _httpx().Client(base_url=self.url, **options)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is a test dependency of users' projects
        raise ImportError("the test clients use httpx: pip install httpx") from None
    return httpx


class _PortalTransport:
    """httpx's ASGI transport (async) for a synchronous ``httpx.Client``: each request runs
    on the router's event loop (the :class:`TestRouter`'s thread)."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, inner: Any) -> None:
        self.portal = portal
        self.inner = inner

    def handle_request(self, request: Any) -> Any:
        httpx = _httpx()

        async def call() -> Any:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )

        return self.portal.call(call)

    def close(self) -> None:
        pass

    def __enter__(self) -> _PortalTransport:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        pass
