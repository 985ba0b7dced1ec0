"""Lambda's Runtime API, served to one environment of a ``router.external(...)`` function.

Each environment gets its own listener on a free loopback port, handed to the command as
``AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT``, so requests need no further routing:

- ``GET  /2018-06-01/runtime/invocation/next``: waits for the next invocation; the body is the
  event, the ``Lambda-Runtime-*`` headers carry the request id, deadline, ARN and trace id.
  The first call ends the Init phase.
- ``POST /2018-06-01/runtime/invocation/{id}/response``: the result.
- ``POST /2018-06-01/runtime/invocation/{id}/error``: Lambda's error document.
- ``POST /2018-06-01/runtime/init/error``: the Init phase failed.

HTTP/1.1 is parsed with h11.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import msgspec

from eventrouter.arns import function_arn
from eventrouter.config import SYNC_PAYLOAD_LIMIT
from eventrouter.outcomes import response_too_large
from eventrouter.runtime.environments.environment import Environment, InitError
from eventrouter.runtime.environments.frames import Invoke, Result, trace_header

if TYPE_CHECKING:
    from eventrouter.runtime.environments.environment import Pool

PREFIX = "/2018-06-01/runtime/"
_JSON = (b"content-type", b"application/json")
_ACCEPTED = b'{"status":"OK"}'


class RuntimeApiEnvironment(Environment):
    """A process speaking Lambda's Runtime API to its own loopback listener."""

    def __init__(self, pool: Pool, command: tuple[str, ...], cwd: str | None) -> None:
        super().__init__(pool)
        self._command = list(command)
        self._cwd = cwd
        self._server: asyncio.Server | None = None
        self._next: asyncio.Queue[Invoke | None] = asyncio.Queue()
        self._began = 0.0

    async def start(self) -> float:
        self._began = time.monotonic()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        env = self.pool.environ()
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
        self.spawn(self._command, env, self._cwd)
        return await self.ready

    def deliver(self, invoke: Invoke) -> None:
        self._next.put_nowait(invoke)  # for the runtime's waiting (or next) GET .../next

    def closed(self) -> None:
        if self._server is not None:
            self._server.close()
        self._next.put_nowait(None)  # a request waiting for an invocation gets none

    # -- HTTP --------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h11  # only routers with functions in other languages pay for it

        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        try:
            while True:
                event = await _next_event(conn, reader)
                if not isinstance(event, h11.Request):
                    return
                body = bytearray()
                size = 0  # past the payload limit only counted, not kept
                while True:
                    part = await _next_event(conn, reader)
                    if isinstance(part, h11.Data):
                        size += len(part.data)
                        if size <= SYNC_PAYLOAD_LIMIT:
                            body += part.data
                    elif isinstance(part, h11.EndOfMessage):
                        break
                    else:
                        return
                headers = {name.lower(): value for name, value in event.headers}
                answer = await self._route(
                    event.method, event.target.decode("latin-1"), headers, bytes(body), size
                )
                if answer is None:  # the environment is gone
                    return
                status, extra, payload = answer
                response = h11.Response(
                    status_code=status,
                    headers=[*extra, (b"content-length", str(len(payload)).encode())],
                )
                writer.write(conn.send(response) + conn.send(h11.Data(data=payload)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _route(
        self,
        method: bytes,
        target: str,
        headers: dict[bytes, bytes],
        body: bytes,
        size: int,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        if not target.startswith(PREFIX):
            return _error(404, "NotFound", f"unknown path {target}")
        path = target[len(PREFIX) :].split("?", 1)[0]
        if path == "invocation/next" and method == b"GET":
            return await self._serve_next()
        if path == "init/error" and method == b"POST":
            if not self.ready.done():
                self.ready.set_exception(InitError(_error_document(body, headers, "")))
            return 202, [_JSON], _ACCEPTED
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "invocation" and method == b"POST":
            request_id, verb = parts[1], parts[2]
            current = self.current
            if current is None or current.request_id != request_id or self.result is None:
                return _error(400, "InvalidRequestID", f"no invocation {request_id} in flight")
            if self.result.done():
                return _error(400, "InvalidStateTransition", "the invocation has its answer")
            if verb == "response":
                if size > SYNC_PAYLOAD_LIMIT:
                    self.result.set_result(Result(error=response_too_large(request_id, size)))
                    return _error(413, "RequestEntityTooLarge", "the response is too large")
                self.result.set_result(Result(body=body or b"null"))
                return 202, [_JSON], _ACCEPTED
            if verb == "error":
                self.result.set_result(Result(error=_error_document(body, headers, request_id)))
                return 202, [_JSON], _ACCEPTED
        return _error(404, "NotFound", f"unknown path {method.decode()} {target}")

    async def _serve_next(self) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        if not self.ready.done():
            self.ready.set_result(time.monotonic() - self._began)
        invoke = await self._next.get()
        if invoke is None:
            return None
        headers = [
            _JSON,
            (b"lambda-runtime-aws-request-id", invoke.request_id.encode()),
            (b"lambda-runtime-deadline-ms", str(invoke.deadline_ms).encode()),
            (b"lambda-runtime-invoked-function-arn", function_arn(self.pool.spec.name).encode()),
            (b"lambda-runtime-trace-id", trace_header(invoke).encode()),
        ]
        if invoke.client_context is not None:
            headers.append(
                (b"lambda-runtime-client-context", msgspec.json.encode(invoke.client_context))
            )
        return 200, headers, invoke.payload


async def _next_event(conn: Any, reader: asyncio.StreamReader) -> Any:
    import h11

    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(65_536))


def _error(status: int, kind: str, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return status, [_JSON], msgspec.json.encode({"errorType": kind, "errorMessage": message})


def _error_document(body: bytes, headers: dict[bytes, bytes], request_id: str) -> dict[str, Any]:
    """Lambda's error document from what a runtime posted (any JSON object, or none)."""
    try:
        posted = msgspec.json.decode(body) if body else {}
    except msgspec.DecodeError:
        posted = {"errorMessage": body.decode("utf-8", "replace")}
    if not isinstance(posted, dict):
        posted = {"errorMessage": str(posted)}
    kind = posted.get("errorType") or headers.get(b"lambda-runtime-function-error-type", b"")
    if isinstance(kind, bytes):
        kind = kind.decode("latin-1")
    trace = posted.get("stackTrace")
    return {
        "errorMessage": str(posted.get("errorMessage", "")),
        "errorType": str(kind or "Unhandled"),
        "requestId": request_id,
        "stackTrace": trace if isinstance(trace, list) else [],
    }
