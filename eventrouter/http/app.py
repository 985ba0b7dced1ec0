"""The ASGI application: routes, the Invoke API, ``/healthz``, ``/readyz``, ``/openapi.json``.

Raw ASGI, no framework: the per-request path is a dictionary lookup (or a regular
expression for templated paths), one body read, the invoker, one response.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import anyio
import msgspec
import structlog

from eventrouter.config import SYNC_PAYLOAD_LIMIT
from eventrouter.contract.spec import PushEndpoint
from eventrouter.events import HttpEvent, new_request_id
from eventrouter.http import control_api, events_api, invoke_api, observe
from eventrouter.http.asgi import (
    JSON,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    header,
    read_body,
    respond,
)
from eventrouter.http.openapi import openapi_document
from eventrouter.http.request import HttpRequest, http_event
from eventrouter.http.streams import RouteStream, StreamAborted
from eventrouter.observability import tracing
from eventrouter.outcomes import Outcome, Status
from eventrouter.response import is_json, shape
from eventrouter.security.guard import AuthFailure
from eventrouter.security.permissions import INVOKE_URL
from eventrouter.signature import decode_integral_floats

if TYPE_CHECKING:
    from eventrouter.registry import Registry
    from eventrouter.runtime.interface import Runtime, Service
    from eventrouter.runtime.invoker import FunctionState
    from eventrouter.security.policy import Principal

log = structlog.get_logger("eventrouter.http")

#: The router's own paths, answered for GET and HEAD.
_BUILT_IN = frozenset({"/healthz", "/readyz", "/openapi.json"})
_encoder = msgspec.json.Encoder()


class Route:
    __slots__ = ("auth", "name", "state", "template")

    def __init__(self, name: str, template: str, auth: str = "NONE") -> None:
        self.name = name
        self.template = template
        self.auth = auth
        self.state: FunctionState | None = None


class HttpApp:
    """The router's ASGI application; built by the engine or by ``Router.asgi()``."""

    def __init__(
        self,
        router: Registry,
        runtime: Runtime | None = None,
        *,
        start: Callable[[], Service] | None = None,
    ) -> None:
        self.router = router
        self.runtime = runtime
        #: Without a runtime, how to make one: the app then starts it (ASGI lifespan, or the
        #: first request) and stops it (lifespan shutdown).
        self._start = start
        self._service: Service | None = None
        self._runtime_lock = anyio.Lock()
        self.static: dict[str, dict[str, Route]] = {}
        self.dynamic: list[tuple[re.Pattern[str], str, dict[str, Route]]] = []
        self._openapi: bytes | None = None
        #: Unknown paths, methods and the OpenAPI document are 403 too when permissions are
        #: enforced: an unauthenticated caller learns nothing about which routes exist.
        self.enforce = bool(router.enforce_permissions)
        #: Notification endpoints (an SNS HTTP subscription, an S3 webhook): path -> function.
        self.endpoints: dict[str, str] = {}
        for spec in router.functions.values():
            if spec.source is None:
                continue
            path = spec.source.endpoint_path(spec.name)
            if path is not None:
                self.endpoints[path] = spec.name
            parsed = spec.source.http_route()
            if parsed is None:
                continue
            route = Route(spec.name, parsed.template, parsed.auth)
            if parsed.pattern is None:
                table = self.static.setdefault(parsed.template, {})
            else:
                existing = next((t for p, tpl, t in self.dynamic if tpl == parsed.template), None)
                if existing is None:
                    existing = {}
                    self.dynamic.append((re.compile(parsed.pattern), parsed.template, existing))
                table = existing
            for method in parsed.methods:
                table[method] = route
        # More specific templates first: more literal characters, then fewer parameters.
        self.dynamic.sort(key=lambda item: (-len(re.sub(r"\{[^}]*\}", "", item[1])), item[1]))
        if runtime is not None:
            self._bind(runtime)

    def _bind(self, runtime: Runtime) -> None:
        self.runtime = runtime
        for table in [*self.static.values(), *(t for _, _, t in self.dynamic)]:
            for route in table.values():
                route.state = runtime.invoker.states[route.name]

    async def running(self) -> Runtime:
        """The runtime serving the app (started now if the app owns one)."""
        if self.runtime is not None:
            return self.runtime
        async with self._runtime_lock:
            if self._service is None:  # the first to hold the lock starts it
                assert self._start is not None, "HttpApp needs a runtime or start="
                service = self._start()
                await service.start()
                self._service = service
                self._bind(service)
            return self._service

    async def aclose(self) -> None:
        """Stop the runtime this app started itself (the ASGI lifespan shutdown does this)."""
        if self._service is not None:
            service, self._service = self._service, None
            await service.shutdown()

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            with contextlib.suppress(ClientDisconnected):
                if tracing.TRACER is None:
                    await self._http(scope, receive, send)
                    return
                with tracing.incoming(lambda name: _text(header(scope, name.encode()))):
                    await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.running()
                except Exception as exc:  # noqa: BLE001 - reported to the ASGI server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST" and path in self.endpoints:
            await self._notification(self.endpoints[path], scope, receive, send)
            return
        if path == "/" and method == "POST":
            target = events_api.target_of(scope)
            if target is not None:  # EventBridge's API (AWS JSON 1.1)
                await events_api.handle(self.running, self.enforce, target, scope, receive, send)
                return
        table = self.static.get(path)
        params: dict[str, str] = {}
        if table is None:
            for pattern, _, candidate in self.dynamic:
                match = pattern.match(path)
                if match is not None:
                    table, params = candidate, match.groupdict()
                    break
        if table is not None:
            route = table.get(method)
            if route is None and method == "HEAD":
                route = table.get("GET")
            if route is None and self.enforce:
                await self._forbidden(send)
                return
            if route is None:
                await self._method_not_allowed(send, method, ", ".join(sorted(table)))
                return
            await self._route(route, params, scope, receive, send)
            return
        if control_api.handles(method, path):
            await control_api.handle(self.running, self.enforce, scope, receive, send)
            return
        if path.startswith(invoke_api.PREFIXES):
            await invoke_api.handle(self.running, self.enforce, scope, receive, send)
            return
        if path in observe.PATHS and method in ("GET", "HEAD"):
            running = await self.running()
            if self.enforce and not observe.allowed(running, scope):
                await self._forbidden(send)
            else:
                await observe.handle(running, path, scope, receive, send)
            return
        if path in _BUILT_IN and method not in ("GET", "HEAD"):
            if self.enforce:  # enforced, nothing but GET of the health checks is open
                await self._forbidden(send)
            else:
                await self._method_not_allowed(send, method, "GET, HEAD")
            return
        headers = [(b"content-type", JSON), (b"x-amzn-requestid", new_request_id().encode())]
        if path == "/healthz":
            await respond(send, 200, b'{"status":"ok"}', headers)
        elif path == "/readyz":
            runtime = self.runtime
            ready = runtime is not None and runtime.ready
            body = b'{"status":"ready"}' if ready else b'{"status":"starting"}'
            await respond(send, 200 if ready else 503, body, headers)
        elif self.enforce:
            await self._forbidden(send)
        elif path == "/openapi.json":
            await respond(send, 200, self.openapi(), headers)
        else:
            await self._error(send, 404, "NotFound", f"no route for {path}", new_request_id())

    async def _method_not_allowed(self, send: Send, method: str, allow: str) -> None:
        await self._error(
            send,
            405,
            "MethodNotAllowed",
            f"{method} is not allowed",
            new_request_id(),
            [(b"allow", allow.encode())],
        )

    async def _forbidden(self, send: Send) -> None:
        await self._error(send, 403, "AccessDeniedException", "Forbidden", new_request_id())

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = _encoder.encode(openapi_document(self.router))
        return self._openapi

    async def _notification(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        """A push from SNS or an S3-compatible store: the feed authenticates and stores it
        (its own signature or token: not SigV4)."""
        runtime = self.runtime or await self.running()
        request_id = new_request_id()
        body = await read_body(receive, SYNC_PAYLOAD_LIMIT, scope)
        if body is None:
            await self._error(send, 413, "RequestTooLarge", "the body is too large", request_id)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, answer = await cast(PushEndpoint, runtime.running[name]).handle(headers, body)
        await respond(
            send,
            status,
            _encoder.encode(answer),
            [(b"content-type", JSON), (b"x-amzn-requestid", request_id.encode())],
        )

    # -- application routes ----------------------------------------------------------------

    async def _route(
        self, route: Route, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        runtime = self.runtime or await self.running()
        state = route.state
        assert state is not None
        request_id = new_request_id()
        body = await read_body(receive, SYNC_PAYLOAD_LIMIT, scope)
        if body is None:
            await self._error(
                send,
                413,
                "RequestTooLarge",
                f"the body is over {SYNC_PAYLOAD_LIMIT} bytes",
                request_id,
            )
            return
        principal = None
        if self.enforce:
            principal = self._authorized(route, scope, body)
            if principal is None:
                await self._forbidden(send)
                return
        request = HttpRequest(scope, params, body, route.template)
        request.auth = route.auth
        request.principal = principal
        spec = state.spec
        event: Any
        if spec.http_raw:
            event = http_event(request, request_id)
            if spec.payload_type is HttpEvent:
                event = msgspec.convert(event, HttpEvent)
        else:
            if body:
                content_type = header(scope, b"content-type")
                if content_type is not None and not is_json(content_type):
                    await self._error(
                        send,
                        415,
                        "UnsupportedMediaType",
                        f"expected a JSON body, got {content_type.decode('latin-1')}",
                        request_id,
                    )
                    return
            try:
                event = spec.event_decoder.decode(body or b"null")
            except msgspec.ValidationError as exc:
                try:
                    event = decode_integral_floats(spec.event_decoder, body or b"null", exc)
                except msgspec.ValidationError as final:
                    runtime.metrics.add("ValidationErrors", spec.name)
                    await self._error(send, 400, "ValidationError", str(final), request_id)
                    return
            except msgspec.DecodeError as exc:
                await self._error(
                    send, 400, "InvalidJSON", f"the body is not JSON: {exc}", request_id
                )
                return
        sink = RouteStream(send, receive, self.router.stream_bandwidth_cap, request_id)
        outcome = await runtime.invoke_sync(
            state, event, request_id, http=request, raw_result=True, stream=sink
        )
        if sink.started:  # streamed: the head is out, an error can only cut the body short
            if sink.aborted:
                return
            if outcome.status is not Status.SUCCESS:
                raise StreamAborted(outcome.request_id)
            await sink.end()
            return
        await self._answer(send, outcome)

    def _authorized(self, route: Route, scope: Scope, body: bytes) -> Principal | None:
        """The caller of a route if it may invoke its function (``lambda:InvokeFunctionUrl``)."""
        assert self.runtime is not None
        try:
            principal, allowed = self.runtime.guard.authorize_http(
                scope, body, route.auth, route.name, INVOKE_URL
            )
        except AuthFailure as exc:
            log.info("http caller refused", route=route.template, reason=exc.code)
            return None
        if not allowed:
            log.info("http caller refused", route=route.template, principal=principal.id)
            return None
        return principal

    async def _answer(self, send: Send, outcome: Outcome) -> None:
        rid = outcome.request_id
        status = outcome.status
        if status is Status.SUCCESS:
            try:
                code, body, headers = shape(outcome.value)
            except (TypeError, ValueError, msgspec.EncodeError) as exc:
                await self._error(
                    send,
                    502,
                    "Runtime.MarshalError",
                    f"the handler's return value cannot be sent: {exc}",
                    rid,
                )
                return
            if len(body) > SYNC_PAYLOAD_LIMIT:
                await self._error(
                    send,
                    502,
                    "Function.ResponseSizeTooLarge",
                    f"the response is over {SYNC_PAYLOAD_LIMIT} bytes",
                    rid,
                )
                return
            headers.append((b"x-amzn-requestid", rid.encode()))
            await respond(send, code, body, headers)
        elif status is Status.THROTTLED:
            await self._error(
                send,
                429,
                "TooManyRequestsException",
                f"Rate Exceeded. ({outcome.reason})",
                rid,
                [(b"retry-after", b"1")],
            )
        else:
            assert outcome.error is not None
            error = outcome.error
            code = 504 if status is Status.TIMEOUT else 502
            if status is Status.INVALID_PAYLOAD:
                code = 400
            await self._error(
                send,
                code,
                error["errorType"],
                error["errorMessage"],
                rid,
                trace=error.get("stackTrace"),
            )

    async def _error(
        self,
        send: Send,
        status: int,
        error_type: str,
        message: str,
        request_id: str,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        trace: list[str] | None = None,
    ) -> None:
        document: dict[str, Any] = {
            "errorType": error_type,
            "errorMessage": message,
            "requestId": request_id,
        }
        if trace and self.router.debug:
            document["stackTrace"] = trace
        headers = [(b"content-type", JSON), (b"x-amzn-requestid", request_id.encode())]
        if extra_headers:
            headers.extend(extra_headers)
        await respond(send, status, _encoder.encode(document), headers)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
