"""The ASGI application: routes, the Invoke API, ``/healthz``, ``/readyz``, ``/openapi.json``.

Raw ASGI, no framework: the per-request path is a dictionary lookup (or a regular
expression for templated paths), one body read, the invoker, one response.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import structlog

from eventrouter.config import SYNC_PAYLOAD_LIMIT
from eventrouter.events import HttpEvent, new_request_id
from eventrouter.http import invoke_api
from eventrouter.http.request import HttpRequest, http_event
from eventrouter.http.response import Response
from eventrouter.runtime.invoker import FunctionState, Outcome, Status
from eventrouter.sources.http import Http

if TYPE_CHECKING:
    from eventrouter.router import Router
    from eventrouter.runtime.engine import Engine
    from eventrouter.security.policy import Principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = structlog.get_logger("eventrouter.http")

JSON = b"application/json"
#: The router's own paths, answered for GET and HEAD.
_BUILT_IN = frozenset({"/healthz", "/readyz", "/openapi.json"})
_encoder = msgspec.json.Encoder()


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` once it passes ``limit`` bytes."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class Route:
    __slots__ = ("auth", "name", "state", "template")

    def __init__(self, name: str, template: str, auth: str = "NONE") -> None:
        self.name = name
        self.template = template
        self.auth = auth
        self.state: FunctionState | None = None


class HttpApp:
    """The router's ASGI application; built by the engine or by ``Router.asgi()``."""

    def __init__(self, router: Router, engine: Engine | None = None, **engine_options: Any) -> None:
        self.router = router
        self.engine = engine
        self._engine_options = engine_options
        self._owns_engine = engine is None
        self._engine_lock = anyio.Lock()
        self.static: dict[str, dict[str, Route]] = {}
        self.dynamic: list[tuple[re.Pattern[str], str, dict[str, Route]]] = []
        self._openapi: bytes | None = None
        #: Unknown paths, methods and the OpenAPI document are 403 too when permissions are
        #: enforced: an unauthenticated caller learns nothing about which routes exist.
        self.enforce = bool(router.enforce_permissions)
        for spec in router.functions.values():
            if not isinstance(spec.source, Http):
                continue
            parsed = spec.source.spec
            route = Route(spec.name, parsed.template, spec.source.auth)
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
        if engine is not None:
            self._bind(engine)

    @classmethod
    def standalone(cls, router: Router, *, state_dir: str | None = None) -> HttpApp:
        """An app that starts its own engine (ASGI lifespan, or the first request)."""
        return cls(router, None, state_dir=state_dir)

    def _bind(self, engine: Engine) -> None:
        self.engine = engine
        for table in [*self.static.values(), *(t for _, _, t in self.dynamic)]:
            for route in table.values():
                route.state = engine.invoker.states[route.name]

    async def _running_engine(self) -> Engine:
        if self.engine is not None:
            return self.engine
        async with self._engine_lock:
            if self.engine is None:
                from eventrouter.runtime.engine import Engine

                engine = Engine(self.router, **self._engine_options)
                await engine.start()
                self._bind(engine)
        assert self.engine is not None
        return self.engine

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            with contextlib.suppress(ClientDisconnected):
                await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._running_engine()
                except Exception as exc:  # noqa: BLE001 - reported to the ASGI server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._owns_engine and self.engine is not None:
                    await self.engine.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
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
        if path.startswith(invoke_api.PREFIX):
            await invoke_api.handle(self, scope, receive, send)
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
            engine = self.engine
            ready = engine is not None and engine.ready
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
            from eventrouter.http.openapi import openapi_document

            self._openapi = _encoder.encode(openapi_document(self.router))
        return self._openapi

    # -- application routes ----------------------------------------------------------------

    async def _route(
        self, route: Route, params: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if route.state is None:
            await self._running_engine()
        state = route.state
        assert state is not None and self.engine is not None
        request_id = new_request_id()
        body = await read_body(receive, SYNC_PAYLOAD_LIMIT)
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
                if content_type is not None and not _is_json(content_type):
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
                self.engine.metrics.add("ValidationErrors", spec.name)
                await self._error(send, 400, "ValidationError", str(exc), request_id)
                return
            except msgspec.DecodeError as exc:
                await self._error(
                    send, 400, "InvalidJSON", f"the body is not JSON: {exc}", request_id
                )
                return
        outcome = await self.engine.invoker.invoke_value(
            state, event, request_id, http=request, raw_result=True
        )
        await self._answer(send, outcome)

    def _authorized(self, route: Route, scope: Scope, body: bytes) -> Principal | None:
        """The caller of a route if it may invoke its function (``lambda:InvokeFunctionUrl``)."""
        from eventrouter.security.guard import INVOKE_URL, AuthFailure

        assert self.engine is not None
        try:
            principal, allowed = self.engine.guard.authorize_http(
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


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def shape(value: Any) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers for a handler's return value."""
    if isinstance(value, Response):
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in value.headers.items()]
        return value.status, value.body, headers
    if isinstance(value, dict) and "statusCode" in value:
        return _lambda_response(value)
    return 200, _encoder.encode(value), [(b"content-type", JSON)]


def _lambda_response(value: dict[str, Any]) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    code = value["statusCode"]
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        raise ValueError(f"statusCode {code!r} is not an HTTP status")
    raw = value.get("body")
    if raw is None:
        body = b""
    elif isinstance(raw, str):
        body = base64.b64decode(raw) if value.get("isBase64Encoded") else raw.encode()
    else:
        body = _encoder.encode(raw)
    headers: list[tuple[bytes, bytes]] = []
    given = value.get("headers") or {}
    if not isinstance(given, dict):
        raise ValueError("headers must be an object")
    for key, header_value in given.items():
        headers.append((str(key).lower().encode("latin-1"), str(header_value).encode("latin-1")))
    for cookie in value.get("cookies") or []:
        headers.append((b"set-cookie", str(cookie).encode("latin-1")))
    if body and not any(k == b"content-type" for k, _ in headers):
        headers.append(
            (
                b"content-type",
                JSON if isinstance(raw, (dict, list)) else b"text/plain; charset=utf-8",
            )
        )
    return code, body, headers
