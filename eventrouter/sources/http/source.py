"""``Http``: an HTTP route as the source of a function (served by the engine's uvicorn)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, ClassVar

import msgspec

from eventrouter.contract.spec import HttpRoute, Model, SourceBase
from eventrouter.errors import ConfigError
from eventrouter.keywords import CheckedStructMeta

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Paths the router serves itself.
RESERVED_PREFIXES = ("/healthz", "/readyz", "/openapi.json", "/2015-03-31/", "/2018-06-01/")
AUTH_TYPES = ("NONE", "API_KEY", "AWS_IAM")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")


class RouteSpec(msgspec.Struct, frozen=True):
    """A parsed route: methods, the template, its parameter names and matcher."""

    methods: tuple[str, ...]
    template: str
    params: tuple[str, ...]
    #: ``None`` for a static path (matched by dictionary lookup).
    pattern: str | None


@lru_cache(maxsize=4096)
def parse_route(route: str) -> RouteSpec:
    """Parse ``"POST /orders/{order_id}"`` or ``"GET,HEAD /files/{path+}"``."""
    if not isinstance(route, str) or " " not in route.strip():
        raise ConfigError(
            f"route {route!r} must be 'METHOD /path', e.g. 'POST /orders/{{order_id}}'"
        )
    methods_part, _, template = route.strip().partition(" ")
    template = template.strip()
    methods = tuple(dict.fromkeys(m.strip().upper() for m in methods_part.split(",") if m.strip()))
    if methods == ("ANY",):
        methods = tuple(sorted(METHODS))
    bad = [m for m in methods if m not in METHODS]
    if not methods or bad:
        raise ConfigError(
            f"route {route!r}: unknown method {bad[0] if bad else ''!r}; "
            f"use {', '.join(sorted(METHODS))} or ANY"
        )
    if not template.startswith("/") or "//" in template or " " in template:
        raise ConfigError(f"route {route!r}: the path must start with '/' and have no spaces")
    if template.startswith(RESERVED_PREFIXES) or template in ("/healthz", "/readyz"):
        raise ConfigError(f"route {route!r}: {template} is served by the router itself")
    params: list[str] = []
    regex = ["^"]
    last = 0
    for match in _PARAM.finditer(template):
        name, greedy = match.group(1), match.group(2)
        if name in params:
            raise ConfigError(f"route {route!r}: parameter {name!r} appears twice")
        if greedy and match.end() != len(template):
            raise ConfigError(f"route {route!r}: a greedy parameter {{{name}+}} must come last")
        regex.append(re.escape(template[last : match.start()]))
        regex.append(f"(?P<{name}>.+)" if greedy else f"(?P<{name}>[^/]+)")
        params.append(name)
        last = match.end()
    stripped = _PARAM.sub("", template)
    if "{" in stripped or "}" in stripped:
        raise ConfigError(f"route {route!r}: malformed parameter; use {{name}} or {{name+}}")
    if "?" in stripped or "#" in stripped:
        raise ConfigError(f"route {route!r}: the path may not hold '?' or '#'")
    regex.append(re.escape(template[last:]) + "$")
    return RouteSpec(tuple(methods), template, tuple(params), "".join(regex) if params else None)


class Http(SourceBase, frozen=True, metaclass=CheckedStructMeta):
    """Serve the function at an HTTP route.

    >>> @router.on_event(Http("POST /orders/{order_id}"))
    ... async def create(order: Order, ctx) -> Accepted:
    ...     return Accepted(id=ctx.http.path_params["order_id"])

    A typed first parameter is decoded from the JSON body; an unannotated, ``dict`` or
    ``HttpEvent`` one gets API Gateway's HTTP API 2.0 event. Path parameters, query and
    headers are on ``ctx.http``.

    ``auth`` (checked when the router enforces permissions): ``"NONE"`` (anyone, if the
    function's resource policy allows the public principal ``"*"``), ``"API_KEY"`` (an
    ``X-API-Key`` header holding a configured key), ``"AWS_IAM"`` (a SigV4-signed request).
    """

    model: ClassVar[Model] = "sync"
    #: Callers are checked per request, as themselves.
    principal: ClassVar[str | None] = None
    named_queue: ClassVar[None] = None
    batch_size: ClassVar[int] = 1

    route: str
    auth: str = "NONE"

    def __post_init__(self) -> None:
        parse_route(self.route)
        if self.auth not in AUTH_TYPES:
            raise ConfigError(
                f"Http({self.route!r}): auth={self.auth!r} must be one of {', '.join(AUTH_TYPES)}"
            )

    @property
    def spec(self) -> RouteSpec:
        return parse_route(self.route)

    @property
    def name(self) -> str:
        return self.route

    def http_route(self) -> HttpRoute:
        parsed = self.spec
        return HttpRoute(parsed.template, parsed.pattern, parsed.methods, parsed.params, self.auth)

    def trace_attributes(self) -> dict[str, Any]:
        return {"faas.trigger": "http", "http.route": self.spec.template}

    def describe(self) -> str:
        spec = self.spec
        return f"http:{','.join(spec.methods)} {spec.template}"
